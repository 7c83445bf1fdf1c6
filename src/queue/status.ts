/**
 * The queue's status per batch: rows waiting, active, delayed, done, failed, and spend so far, as
 * `tokenhot-batch status` prints it and the dashboard's batches page shows it.
 */
import type { Queue } from 'bullmq';
import type { BatchState } from './batch-state.js';
import type { CatalogRun, CatalogState } from '../catalog/state.js';
import { formatUsd, picoToUsd } from '../cost/pricing.js';
import { formatDuration, rateAndEta } from '../run/progress.js';
import type { ImageJobData } from './queue.js';

export interface BatchStatus {
  batch: string;
  rows: number;
  waiting: number;
  active: number;
  delayed: number;
  done: number;
  failed: number;
  /** Waiting because the batch reached its budget (not failed). */
  overBudget: number;
  spendUsd: number;
  spendPico: bigint;
  budgetUsd?: number;
  budgetPico?: bigint;
  failedRows: { id: string; reason: string }[];
  /** Where the workers write the batch when it was given an output of its own (`--out`, a job's `out:`). */
  output?: string;
}

export interface QueueStatus {
  paused: boolean;
  pauseReason?: string;
  rateLimitedForMs: number;
  batches: BatchStatus[];
  /** `--batch` named a batch the queue does not know (a typo, or another prefix). */
  unknownBatch?: { name: string; known: string[] };
  /** The last firings of each catalog job. */
  catalogs: { name: string; runs: CatalogRun[] }[];
}

/** Active and delayed jobs are few; count them per batch from their ids (`<batch>/<row>`). */
async function jobsPerBatch(queue: Queue<ImageJobData>, state: 'active' | 'delayed'): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const jobs = await queue.getJobs([state], 0, 49_999);
  for (const job of jobs) {
    const batch = job?.data?.row?.batch;
    if (batch) counts.set(batch, (counts.get(batch) ?? 0) + 1);
  }
  return counts;
}

export async function readStatus(queue: Queue<ImageJobData>, state: BatchState, catalogState: CatalogState, options: { batch?: string; failedLimit: number }): Promise<QueueStatus> {
  const known = await state.batches();
  // A batch with its sub-batches (a catalog job's firings `name/date`), as `report --batch` takes it.
  const names = options.batch ? await state.batchesUnder(options.batch) : known;
  const [active, delayed, paused, pauseReason, rateLimitedForMs] = await Promise.all([
    jobsPerBatch(queue, 'active'),
    jobsPerBatch(queue, 'delayed'),
    queue.isPaused(),
    state.pauseReason(),
    queue.getRateLimitTtl(Number.MAX_SAFE_INTEGER),
  ]);
  const batches: BatchStatus[] = [];
  for (const name of names) {
    const [counts, meta] = await Promise.all([state.counts(name), state.meta(name)]);
    const activeCount = active.get(name) ?? 0;
    // Parked over-budget jobs sit in BullMQ's delayed set; they are shown as over budget.
    const delayedCount = Math.max(0, (delayed.get(name) ?? 0) - counts.overBudget);
    batches.push({
      batch: name,
      rows: counts.rows,
      active: activeCount,
      delayed: delayedCount,
      waiting: Math.max(0, counts.rows - counts.done - counts.failed - activeCount - delayedCount - counts.overBudget),
      done: counts.done,
      failed: counts.failed,
      overBudget: counts.overBudget,
      spendPico: counts.spendPico,
      spendUsd: picoToUsd(counts.spendPico),
      ...(counts.budgetPico !== undefined ? { budgetPico: counts.budgetPico, budgetUsd: picoToUsd(counts.budgetPico) } : {}),
      failedRows: options.failedLimit > 0 ? await state.failedRows(name, options.failedLimit) : [],
      ...(meta.out ? { output: meta.out } : {}),
    });
  }
  const catalogs = await Promise.all((await catalogState.names()).map(async (name) => ({ name, runs: await catalogState.runs(name, 5) })));
  return {
    paused,
    pauseReason: paused ? pauseReason : undefined,
    rateLimitedForMs: Math.max(0, rateLimitedForMs),
    batches,
    ...(options.batch && names.length === 0 ? { unknownBatch: { name: options.batch, known } } : {}),
    catalogs,
  };
}

/** Rows per minute and time left per batch, from the first and the latest look (`--watch`). */
export class BatchRates {
  private readonly first = new Map<string, { at: number; settled: number }>();

  observe(status: QueueStatus, now = Date.now()): Map<string, { perMinute: number; eta: string }> {
    const rates = new Map<string, { perMinute: number; eta: string }>();
    for (const batch of status.batches) {
      const settled = batch.done + batch.failed;
      const first = this.first.get(batch.batch);
      if (!first) {
        this.first.set(batch.batch, { at: now, settled });
        continue;
      }
      const { perMinute, etaSeconds } = rateAndEta(settled - first.settled, settled - first.settled + batch.waiting + batch.active + batch.delayed, first.at, now);
      rates.set(batch.batch, { perMinute, eta: batch.waiting + batch.active + batch.delayed === 0 ? '-' : formatDuration(etaSeconds) });
    }
    return rates;
  }
}

export function renderStatus(status: QueueStatus, rates?: Map<string, { perMinute: number; eta: string }>): string {
  const header = ['batch', 'rows', 'waiting', 'active', 'delayed', 'done', 'failed', 'over budget', 'spend', 'budget', ...(rates ? ['rate/min', 'ETA'] : [])];
  const rows = status.batches.map((b) => {
    const rate = rates?.get(b.batch);
    return [b.batch, b.rows, b.waiting, b.active, b.delayed, b.done, b.failed, b.overBudget]
      .map(String)
      .concat(formatUsd(b.spendPico, 4), b.budgetPico === undefined ? '-' : formatUsd(b.budgetPico, 2), ...(rates ? [rate ? rate.perMinute.toFixed(1) : '…', rate?.eta ?? '…'] : []));
  });
  const all = [header, ...rows];
  const widths = header.map((_, col) => Math.max(...all.map((row) => row[col]!.length)));
  const line = (row: string[]): string => row.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join('  ');
  const out = [line(header), ...rows.map(line)];
  if (status.unknownBatch) {
    const { name, known } = status.unknownBatch;
    out.push(`(no batch named ${name} in this queue; its batches: ${known.length > 0 ? known.slice(0, 10).join(', ') + (known.length > 10 ? ', ...' : '') : 'none'})`);
  } else if (status.batches.length === 0) out.push('(no batches yet: tokenhot-batch enqueue <csv> --batch NAME)');
  if (status.paused) out.push(`queue PAUSED${status.pauseReason ? `: ${status.pauseReason}` : ''} (tokenhot-batch resume)`);
  if (status.rateLimitedForMs > 0) out.push(`rate limited: no call starts for ${(status.rateLimitedForMs / 1000).toFixed(1)} s`);
  for (const batch of status.batches) if (batch.output) out.push(`batch ${batch.batch} is written to ${batch.output}`);
  for (const batch of status.batches) {
    if (batch.overBudget > 0) out.push(`batch ${batch.batch} is OVER BUDGET: ${batch.overBudget} row(s) wait (tokenhot-batch budget ${batch.batch} --usd MORE)`);
  }
  for (const batch of status.batches) {
    if (batch.failedRows.length === 0) continue;
    out.push(`failed rows of ${batch.batch}${batch.failed > batch.failedRows.length ? ` (first ${batch.failedRows.length} of ${batch.failed})` : ''}:`);
    for (const row of batch.failedRows) out.push(`  ${row.id}: ${row.reason}`);
  }
  for (const catalog of status.catalogs) {
    out.push(`catalog ${catalog.name}, last firings:`);
    for (const run of catalog.runs) {
      out.push(
        `  ${run.firedAt} ${run.status}${run.reason ? ` (${run.reason})` : ''}: ${run.enqueued} enqueued, ${run.unchanged} unchanged, ${run.stillQueued} still queued, ${run.rejected} rejected → batch ${run.batch}`,
      );
      for (const problem of run.rejectedRows.slice(0, 3)) out.push(`    ${problem}`);
    }
  }
  return `${out.join('\n')}\n`;
}
