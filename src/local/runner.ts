/**
 * The in-process runner: a CSV through the one-row step with bounded concurrency (p-limit), no
 * Redis needed. Re-running the same command does only the rows without a finished output.
 */
import type { RowContext } from '../run/generate.js';
import type { PriceTable } from '../cost/pricing.js';
import { rowChecks, strictRejection, type RowProblem } from '../rows/csv.js';
import { csvSource, readSourceRows } from '../rows/row-source.js';
import type { BatchRow } from '../core/types.js';
import { rowsToRun } from './resume.js';
import { LocalRowRunner } from './row-runner.js';
import type { LocalRunOptions } from './run-options.js';
import { emptySummary, type RunSummary } from './run-summary.js';

export type { LocalRunOptions, RunEvent } from './run-options.js';
export type { FailedRow, RunSummary } from './run-summary.js';

/** Reads the whole file first: bad rows are known before the first request. */
async function collectRows(options: LocalRunOptions, prices: PriceTable): Promise<{ rows: BatchRow[]; rejected: RowProblem[] }> {
  const rows: BatchRow[] = [];
  const rejected: RowProblem[] = [];
  for await (const read of readSourceRows(options.source ?? csvSource(options.csvPath), rowChecks(options.defaults, options.budgetPico, prices, options.reading))) {
    if ('problem' in read) rejected.push(read.problem);
    else rows.push({ ...read.row, batch: options.batch });
  }
  if (options.strict && rejected.length > 0) throw strictRejection(options.csvPath, rejected);
  return { rows, rejected };
}

/** Runs a file in this process; one run of a batch at a time (see `OutputStore.lockBatch`). */
export async function runLocal(options: LocalRunOptions, context: RowContext): Promise<RunSummary> {
  const lock = await context.store.lockBatch(options.batch);
  try {
    return await runRows(options, context);
  } finally {
    await lock.release();
  }
}

async function runRows(options: LocalRunOptions, context: RowContext): Promise<RunSummary> {
  const started = Date.now();
  const { rows, rejected } = await collectRows(options, context.prices);
  const summary = emptySummary(options, rows.length, rejected);
  const todo = await rowsToRun(rows, summary, options, context.store);
  const runner = new LocalRowRunner(options, context, summary, todo.length);
  await runner.runAll(todo);

  // Nothing of this batch is in flight now: temporary files of killed runs can go.
  await context.store.sweepAllPartials(options.batch).catch(() => undefined);

  runner.fillSummary();
  summary.elapsedMs = Date.now() - started;
  return summary;
}
