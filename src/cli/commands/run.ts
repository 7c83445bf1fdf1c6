/**
 * `tokenhot-batch run <csv>`: the whole flow for one file, in-process (without REDIS_URL).
 */
import { describeBudget, ledgerSpend, parseBudget } from '../../run/budget.js';
import { loadConfig, requireWebhookSecret, type ConfigFlags } from '../../core/config.js';
import { UsageError } from '../../core/errors.js';
import { readLedger } from '../../output/ledger.js';
import { runLocal, type FailedRow, type RunSummary } from '../../local/runner.js';
import type { Logger } from '../../core/log.js';
import { estimateFile, renderEstimate } from './estimate.js';
import { createPipeline, type Pipeline } from '../../run/pipeline.js';
import { formatUsd, loadPriceTable, picoToUsd, type PriceTable } from '../../cost/pricing.js';
import { createProgress, spendText } from '../../run/progress.js';
import { buildReport, renderTable } from '../../cost/report.js';
import { formatProblem, rejectedRowCount } from '../../rows/csv.js';
import { numberFlag } from './flag-values.js';
import { csvInput, warnOnStderr, type CsvInputFlags } from './csv-input.js';
import { rowInput, type JobInputFlags, type RowInput } from './job-input.js';
import { writeManifest, type ManifestSummary } from '../../output/manifest.js';
import { newEvent } from '../../notify/events.js';
import { openLocalNotifier, type LocalNotifier } from '../../notify/local-notifier.js';
import { notifyUrlsOf } from '../../notify/targets.js';
import { updateLatest } from '../../output/latest.js';
import type { OutputStore } from '../../output/storage.js';
import { existsSync } from 'node:fs';
import type { CatalogDefinition } from '../../catalog/definition.js';
import type { Deliver } from '../../core/types.js';

export interface RunFlags extends ConfigFlags, CsvInputFlags, JobInputFlags {
  batch?: string;
  retryFailed?: boolean;
  /** Make again the finished rows whose prompt or parameters changed in the file since. */
  redoChanged?: boolean;
  plain?: boolean;
  prefix?: string;
  budgetUsd?: string;
  dryRun?: boolean;
  rpm?: string;
  /** `--notify`, repeatable. */
  notify?: string[];
}

/** An in-process run's webhooks: the batch's URLs and this process's notifier (best effort). */
export interface RunWebhooks {
  urls: string[];
  /** The job's `deliver:` (said in `batch.finished`). */
  deliver?: Deliver;
  notifier: LocalNotifier;
}

const describeRow = (row: FailedRow): string => (row.line ? `${row.id} (line ${row.line})` : row.id);

/** Failed rows in the file's order (they settle in any order). */
const inLineOrder = (rows: FailedRow[]): FailedRow[] => [...rows].sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));

/**
 * Summary, failed rows with reasons, rejected rows; for people, on stdout. A `fatal` reason is
 * left to the caller's one `error:` line, not said twice.
 */
export function formatSummary(summary: RunSummary, fatal?: string): string {
  const lines: string[] = [];
  const seconds = (summary.elapsedMs / 1000).toFixed(1);
  lines.push(
    `batch ${summary.batch}: ${summary.done} done, ${summary.failed.length} failed` +
      (summary.notRun > 0 ? `, ${summary.notRun} not run` : '') +
      (summary.alreadyDone > 0 ? `, ${summary.alreadyDone} already done` : '') +
      (summary.rejected.length > 0 ? `, ${rejectedRowCount(summary.rejected)} rejected` : '') +
      ` in ${seconds}s; spend ${spendText(summary)}`,
  );
  if (summary.stopReason && summary.stopReason !== fatal) lines.push(`stopped: ${summary.stopReason}`);
  if (summary.overBudget > 0 && summary.budgetPico !== undefined) {
    lines.push(
      `over budget: ${summary.overBudget} row(s) not started, ${describeBudget(summary.batchSpendPico ?? summary.spendPico, summary.budgetPico)}; ` +
        'they wait: run again with a higher --budget-usd to finish them',
    );
  }
  if (summary.failed.length > 0) {
    lines.push('failed rows:');
    for (const row of inLineOrder(summary.failed)) lines.push(`  ${describeRow(row)}: ${row.reason}`);
  }
  if (summary.alreadyFailed.length > 0) {
    lines.push(`failed in an earlier run, not tried again (--retry-failed to run them; a billed answer is billed again):`);
    for (const row of inLineOrder(summary.alreadyFailed)) lines.push(`  ${describeRow(row)}: ${row.reason}`);
  }
  if (summary.changedSinceDone.length > 0) {
    lines.push(`finished before, but changed in the file since (not made again: run with --redo-changed to make them anew):`);
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

/** The summary, then the batch's cost report from the ledger (all runs of the batch), then a fatal error once. */
async function printOutcome(summary: RunSummary, outDir: string, prices: PriceTable, fatal?: string): Promise<void> {
  process.stdout.write(formatSummary(summary, fatal));
  await printReport(summary.batch, outDir, prices);
  if (fatal) process.stderr.write(`error: ${fatal}\n`);
}

async function printReport(batch: string, outDir: string, prices: PriceTable): Promise<void> {
  try {
    const report = await buildReport(readLedger(outDir), { by: ['model'], batch, prices });
    process.stdout.write(`\ncost of batch ${batch} (all runs, from the ledger):\n${renderTable(report, ['model'])}`);
  } catch (error) {
    // The summary above stands; a ledger that cannot be read (the reason the run stopped, say)
    // must not hide it or the exit status.
    process.stdout.write(`\nno cost report: the ledger cannot be read (${(error as Error).message})\n`);
  }
}

/**
 * The batch's manifest, and for a job its `latest/` view: what a team's sync reads. A failure
 * here is said, and the run's outcome stands (its images and ledger are safe).
 */
async function writeBatchFiles(store: OutputStore, batch: string, job: CatalogDefinition | undefined): Promise<ManifestSummary | undefined> {
  // A batch no row ever settled in (a wrong key stopped it at once) gets no folder for a manifest of nothing.
  if (!existsSync(store.batchDir(batch))) return undefined;
  try {
    const deliver = { deliver: job?.deliver ?? 'all' } as const;
    const manifest = await writeManifest(store, batch, deliver);
    if (job) await updateLatest(store, job.name, batch, { ...deliver, entries: manifest.entries });
    return manifest;
  } catch (error) {
    process.stderr.write(`warning: the manifest of batch ${batch} could not be written: ${(error as Error).message}\n`);
    return undefined;
  }
}

/**
 * The run's end, to its webhooks: `run.stopped` on a fatal error; `batch.finished` when every
 * row of the file settled (done, failed, or over budget) and this run settled any; nothing for
 * an interrupted run or one stopped by a per-day quota (its rows wait for the next run).
 */
async function announceRunEnd(webhooks: RunWebhooks | undefined, summary: RunSummary, manifest: ManifestSummary | undefined, fatal: string | undefined): Promise<void> {
  if (!webhooks) return;
  const { batch } = summary;
  if (fatal) return webhooks.notifier.send(webhooks.urls, newEvent('run.stopped', { batch, reason: fatal }));
  const settledNow = summary.done + summary.failed.length + summary.overBudget;
  if (summary.stopReason || summary.notRun > 0 || settledNow === 0 || !manifest) return;
  const { done, failed, costUsd, csvPath } = manifest;
  await webhooks.notifier.send(webhooks.urls, newEvent('batch.finished', { batch, rows: summary.rows, done, failed, overBudget: summary.overBudget, costUsd, manifest: csvPath, deliver: webhooks.deliver }));
}

/** `batch.over_budget` once a run: at its first row not started for the budget. */
function overBudgetNotice(webhooks: RunWebhooks | undefined, batch: string): (spendPico: bigint, budgetPico: bigint) => void {
  let sent = false;
  return (spendPico, budgetPico) => {
    if (!webhooks || sent) return;
    sent = true;
    void webhooks.notifier.send(webhooks.urls, newEvent('batch.over_budget', { batch, spendUsd: picoToUsd(spendPico), budgetUsd: picoToUsd(budgetPico) }));
  };
}

/** Runs a file in-process with an existing pipeline, prints progress, summary and report. */
export async function runFileInProcess(input: RowInput, flags: RunFlags, pipeline: Pipeline, log: Logger, webhooks?: RunWebhooks): Promise<RunResult> {
  const { batch, config } = input;
  const overBudget = overBudgetNotice(webhooks, batch);
  const budgetPico = parseBudget(input.budgetUsd);
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
  // Warnings come while the file is checked, before the progress bar starts.
  const { reading } = csvInput(flags, config, warnOnStderr, pipeline.photos);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const summary = await runLocal(
      {
        csvPath: input.path,
        source: input.source,
        batch,
        defaults: { model: config.model, aspectRatio: config.aspectRatio, imageSize: config.imageSize },
        reading,
        concurrency: config.concurrency,
        retry: config.retry,
        strict: flags.strict,
        retryFailed: flags.retryFailed,
        redoChanged: flags.redoChanged,
        budgetPico,
        rpm: numberFlag('--rpm', flags.rpm, 1),
        spentBeforePico: budgetPico === undefined ? undefined : await ledgerSpend(pipeline.store.root, batch, pipeline.prices),
        stopSignal: stop.signal,
        abortSignal: abort.signal,
        progress: (total) => createProgress({ label: batch, total, plain: flags.plain }),
        onEvent: (event) => {
          if (event.type === 'retry') log.info({ batch, row: event.row.id, attempt: event.attempt, delayMs: event.delayMs }, `retrying: ${event.reason}`);
          if (event.type === 'rateLimited') log.info({ batch, row: event.row.id, delayMs: event.delayMs }, `rate limited: ${event.reason}`);
          if (event.type === 'overBudget') overBudget(event.spendPico, event.budgetPico);
        },
      },
      pipeline,
    );
    const manifest = await writeBatchFiles(pipeline.store, batch, input.job);
    const interrupted = summary.stopReason === 'interrupted';
    const fatal = !interrupted && summary.stopReason !== undefined && !summary.stopReason.startsWith('daily quota') ? summary.stopReason : undefined;
    await announceRunEnd(webhooks, summary, manifest, fatal);
    await printOutcome(summary, pipeline.store.root, pipeline.prices, fatal);
    return { summary, exitCode: interrupted ? 130 : fatal ? 2 : exitCodeFor(summary) };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export async function runCommand(csv: string | undefined, flags: RunFlags, log: Logger): Promise<number> {
  const input = await rowInput(csv, flags, loadConfig(flags), warnOnStderr);
  const { config, batch } = input;
  const notify = notifyUrlsOf(flags.notify, input.job?.notify);
  requireWebhookSecret(config, notify);
  if (flags.dryRun) {
    const { reading, unknownModels } = csvInput(flags, config, warnOnStderr);
    const { estimate, rejected, skipped } = await estimateFile(input.path, { batch, retryFailed: flags.retryFailed, redoChanged: flags.redoChanged }, config, reading, input.source);
    process.stdout.write(`dry run of batch ${batch}: nothing sent\n${renderEstimate(estimate, rejected, skipped)}`);
    const budgetPico = parseBudget(input.budgetUsd);
    if (budgetPico !== undefined) {
      const spent = await ledgerSpend(config.outDir, batch, await loadPriceTable(config));
      const after = spent + estimate.costPico;
      process.stdout.write(
        `budget: ${describeBudget(spent, budgetPico)} so far; with this estimate ${formatUsd(after, 4)}` +
          (spent >= budgetPico ? ': the cap is reached, a run would start no row\n' : after > budgetPico ? ': over the cap, a run would stop at it and leave the rest waiting\n' : ': within the cap\n'),
      );
    }
    // As `estimate`: a model this version does not know cannot be estimated.
    return rejected.length > 0 || unknownModels.length > 0 ? 1 : 0;
  }
  if (config.redisUrl) {
    // A queued row's job id is taken once it is done; making it again is a new batch's work.
    if (flags.redoChanged) throw new UsageError('--redo-changed works in-process (without REDIS_URL); through the queue, run the file as another --batch');
    const { reading } = csvInput(flags, config, warnOnStderr);
    // BullMQ and ioredis load only here: an in-process run has no use for them.
    const { runCsvWithRedis } = await import('../../queue/runner.js');
    // `run --out` is this process's output, as TOKENHOT_OUT_DIR is: rows carry an output only when
    // a job names one (`enqueue --out` gives a CSV's batch its own).
    const out = input.job?.out !== undefined ? input.out : undefined;
    // In the batch's meta before its rows: whichever worker finishes the batch sends its webhooks.
    const { rememberNotifyUrls } = await import('../../queue/enqueue.js');
    const { queueSettings } = await import('../../queue/queue.js');
    await rememberNotifyUrls(queueSettings(config.redisUrl, flags.prefix), batch, notify);
    const { summary, exitCode, fatal } = await runCsvWithRedis(
      { csvPath: input.path, source: input.source, ...(input.job ? { job: input.job.name, deliver: input.job.deliver } : {}), out, batch, reading, strict: flags.strict, prefix: flags.prefix, plain: flags.plain, budgetPico: parseBudget(input.budgetUsd), rpm: numberFlag('--rpm', flags.rpm, 1), retryFailed: flags.retryFailed },
      config,
      log,
    );
    await printOutcome(summary, config.outDir, await loadPriceTable(config), fatal);
    return exitCode;
  }
  const pipeline = await createPipeline(config);
  const webhooks = notify.length > 0 ? { urls: notify, notifier: openLocalNotifier(config, warnOnStderr), deliver: input.job?.deliver ?? 'all' } : undefined;
  try {
    return (await runFileInProcess(input, flags, pipeline, log, webhooks)).exitCode;
  } finally {
    // Best effort in-process: deliveries under way get a short grace (see notify/local-notifier.ts).
    await webhooks?.notifier.close();
    await pipeline.close();
  }
}
