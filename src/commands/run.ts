/**
 * `tokenhot-batch run <csv>`: the whole flow for one file, in-process (without REDIS_URL).
 */
import { basename, extname } from 'node:path';
import { describeBudget, ledgerSpend, parseBudget } from '../budget.js';
import { loadConfig, type Config, type ConfigFlags } from '../config.js';
import { UsageError } from '../errors.js';
import { readLedger } from '../ledger.js';
import { runLocal, type FailedRow, type RunSummary } from '../local-runner.js';
import type { Logger } from '../log.js';
import { geminiTokenCounts } from '../gemini/usage.js';
import { estimateFile, renderEstimate } from './estimate.js';
import { createPipeline, type Pipeline } from '../pipeline.js';
import { formatUsd, loadPriceTable, type PriceTable } from '../pricing.js';
import { runCsvWithRedis } from '../queue-runner.js';
import { createProgress, spendText } from '../progress.js';
import { buildReport, renderTable } from '../report.js';
import { formatProblem } from '../rows.js';
import { checkBatchName } from '../storage.js';
import { numberFlag } from './flag-values.js';

export interface RunFlags extends ConfigFlags {
  batch?: string;
  strict?: boolean;
  retryFailed?: boolean;
  plain?: boolean;
  prefix?: string;
  budgetUsd?: string;
  dryRun?: boolean;
  rpm?: string;
}

/** The batch a file runs as: `--batch`, else the file's name without its extension. */
export function batchNameFor(csvPath: string, flag: string | undefined): string {
  const batch = flag ?? basename(csvPath, extname(csvPath)).replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  const problem = checkBatchName(batch);
  if (problem) throw new UsageError(`${problem}; choose one with --batch`);
  return batch;
}

const describeRow = (row: FailedRow): string => (row.line ? `${row.id} (line ${row.line})` : row.id);

/** Summary, failed rows with reasons, rejected rows; for people, on stdout. */
export function formatSummary(summary: RunSummary): string {
  const lines: string[] = [];
  const seconds = (summary.elapsedMs / 1000).toFixed(1);
  lines.push(
    `batch ${summary.batch}: ${summary.done} done, ${summary.failed.length} failed` +
      (summary.notRun > 0 ? `, ${summary.notRun} not run` : '') +
      (summary.alreadyDone > 0 ? `, ${summary.alreadyDone} already done` : '') +
      (summary.rejected.length > 0 ? `, ${summary.rejected.length} rejected` : '') +
      ` in ${seconds}s; spend ${spendText(summary)}`,
  );
  if (summary.stopReason) lines.push(`stopped: ${summary.stopReason}`);
  if (summary.overBudget > 0 && summary.budgetPico !== undefined) {
    lines.push(
      `over budget: ${summary.overBudget} row(s) not started, ${describeBudget(summary.batchSpendPico ?? summary.spendPico, summary.budgetPico)}; ` +
        'they wait: run again with a higher --budget-usd to finish them',
    );
  }
  if (summary.failed.length > 0) {
    lines.push('failed rows:');
    for (const row of summary.failed) lines.push(`  ${describeRow(row)}: ${row.reason}`);
  }
  if (summary.alreadyFailed.length > 0) {
    lines.push(`failed in an earlier run, not tried again (--retry-failed to run them; a billed answer is billed again):`);
    for (const row of summary.alreadyFailed) lines.push(`  ${describeRow(row)}: ${row.reason}`);
  }
  if (summary.changedSinceDone.length > 0) {
    lines.push(`finished before, but changed in the file since (not made again: remove a row's <id>.json sidecar, or use another --batch, to make it anew):`);
    for (const row of summary.changedSinceDone.slice(0, 20)) lines.push(`  ${describeRow(row)}`);
    if (summary.changedSinceDone.length > 20) lines.push(`  ... and ${summary.changedSinceDone.length - 20} more`);
  }
  if (summary.rejected.length > 0) {
    lines.push('rejected rows (fix the file and run again; finished rows are not redone):');
    for (const problem of summary.rejected) lines.push(`  ${formatProblem(problem)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** 0: every row done; 1: some row failed, was rejected or did not run; 2 is for the caller (fatal). */
export function exitCodeFor(summary: RunSummary): number {
  const unfinished = summary.failed.length + summary.alreadyFailed.length + summary.rejected.length + summary.notRun + summary.overBudget;
  return unfinished === 0 ? 0 : 1;
}

export interface RunResult {
  summary: RunSummary;
  exitCode: number;
}

/** The summary, then the batch's cost report from the ledger (all runs of the batch). */
async function printOutcome(summary: RunSummary, outDir: string, prices: PriceTable): Promise<void> {
  process.stdout.write(formatSummary(summary));
  try {
    const report = await buildReport(readLedger(outDir), { by: ['model'], batch: summary.batch, prices, tokenCounts: geminiTokenCounts });
    process.stdout.write(`\ncost of batch ${summary.batch} (all runs, from the ledger):\n${renderTable(report, ['model'])}`);
  } catch (error) {
    // The summary above stands; a ledger that cannot be read (the reason the run stopped, say)
    // must not hide it or the exit status.
    process.stdout.write(`\nno cost report: the ledger cannot be read (${(error as Error).message})\n`);
  }
}

/** Runs a file in-process with an existing pipeline, prints progress, summary and report. */
export async function runFileInProcess(csvPath: string, flags: RunFlags, config: Config, pipeline: Pipeline, log: Logger): Promise<RunResult> {
  const batch = batchNameFor(csvPath, flags.batch);
  const budgetPico = parseBudget(flags.budgetUsd);
  const stop = new AbortController();
  const abort = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupts += 1;
    if (interrupts === 1) {
      process.stderr.write(`\n${signal}: finishing the calls in flight, taking no new rows (again to abort them)\n`);
      stop.abort();
    } else {
      abort.abort(new Error('aborted'));
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const summary = await runLocal(
      {
        csvPath,
        batch,
        defaults: { model: config.model, aspectRatio: config.aspectRatio, imageSize: config.imageSize },
        concurrency: config.concurrency,
        retry: config.retry,
        strict: flags.strict,
        retryFailed: flags.retryFailed,
        budgetPico,
        rpm: numberFlag('--rpm', flags.rpm, 1),
        spentBeforePico: budgetPico === undefined ? undefined : await ledgerSpend(pipeline.store.root, batch, pipeline.prices),
        stopSignal: stop.signal,
        abortSignal: abort.signal,
        progress: (total) => createProgress({ label: batch, total, plain: flags.plain }),
        onEvent: (event) => {
          if (event.type === 'retry') log.info({ batch, row: event.row.id, attempt: event.attempt, delayMs: event.delayMs }, `retrying: ${event.reason}`);
          if (event.type === 'rateLimited') log.info({ batch, row: event.row.id, delayMs: event.delayMs }, `rate limited: ${event.reason}`);
        },
      },
      pipeline,
    );
    await printOutcome(summary, pipeline.store.root, pipeline.prices);
    if (summary.stopReason === 'interrupted') return { summary, exitCode: 130 };
    const fatal = summary.stopReason !== undefined && !summary.stopReason.startsWith('daily quota');
    return { summary, exitCode: fatal ? 2 : exitCodeFor(summary) };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export async function runCommand(csvPath: string, flags: RunFlags, log: Logger): Promise<number> {
  const config = loadConfig(flags);
  if (flags.dryRun) {
    const batch = batchNameFor(csvPath, flags.batch);
    const { estimate, rejected, skipped } = await estimateFile(csvPath, { batch, retryFailed: flags.retryFailed }, config);
    process.stdout.write(`dry run of batch ${batch}: nothing sent\n${renderEstimate(estimate, rejected, skipped)}`);
    const budgetPico = parseBudget(flags.budgetUsd);
    if (budgetPico !== undefined) {
      const spent = await ledgerSpend(config.outDir, batch, await loadPriceTable(config));
      const after = spent + estimate.costPico;
      process.stdout.write(
        `budget: ${describeBudget(spent, budgetPico)} so far; with this estimate ${formatUsd(after, 4)}` +
          (spent >= budgetPico ? ': the cap is reached, a run would start no row\n' : after > budgetPico ? ': over the cap, a run would stop at it and leave the rest waiting\n' : ': within the cap\n'),
      );
    }
    return rejected.length > 0 ? 1 : 0;
  }
  if (config.redisUrl) {
    const batch = batchNameFor(csvPath, flags.batch);
    const { summary, exitCode, fatal } = await runCsvWithRedis(
      { csvPath, batch, strict: flags.strict, prefix: flags.prefix, plain: flags.plain, budgetPico: parseBudget(flags.budgetUsd), rpm: numberFlag('--rpm', flags.rpm, 1), retryFailed: flags.retryFailed },
      config,
      log,
    );
    await printOutcome(summary, config.outDir, await loadPriceTable(config));
    if (fatal) process.stderr.write(`error: ${fatal}\n`);
    return exitCode;
  }
  const pipeline = await createPipeline(config);
  try {
    const { exitCode, summary } = await runFileInProcess(csvPath, flags, config, pipeline, log);
    if (exitCode === 2) process.stderr.write(`error: ${summary.stopReason}\n`);
    return exitCode;
  } finally {
    await pipeline.close();
  }
}
