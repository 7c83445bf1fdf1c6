/**
 * The in-process runner: a CSV through the one-row step with bounded concurrency (p-limit), no
 * Redis needed. Re-running the same command does only the rows without a finished output.
 */
import { setMaxListeners } from 'node:events';
import pLimit from 'p-limit';
import { asCallError } from '../core/errors.js';
import { LocalBudget, reservationFor, type Reservation } from '../run/budget.js';
import { generateRow, planRow, type RowContext, type RowOutcome, type Sidecar } from '../run/generate.js';
import type { Progress, ProgressState } from '../run/progress.js';
import { quotaScope } from '../run/pacing.js';
import { LocalPacer, sleep } from '../run/rate-gate.js';
import { ModelWatch, nextStep, ReachWatch, type RetryPolicy } from '../run/retry-policy.js';
import type { PriceTable } from '../cost/pricing.js';
import { readRows, rowChecks, strictRejection, type CsvReading, type RowDefaults, type RowProblem } from '../rows/csv.js';
import type { BatchRow } from '../core/types.js';

export interface LocalRunOptions {
  csvPath: string;
  batch: string;
  defaults: RowDefaults;
  concurrency: number;
  retry: RetryPolicy;
  /** Refuse the whole file when any row is bad, before a single request. */
  strict?: boolean;
  /** Run rows again that failed for good in an earlier run (they are billed again). */
  retryFailed?: boolean;
  /** Make again the finished rows whose prompt or parameters changed in the file since. */
  redoChanged?: boolean;
  /** The delimiter and what to do with unknown model ids (see `CsvReading`). */
  reading?: CsvReading;
  /** Stops taking new rows when aborted; calls in flight finish. */
  stopSignal?: AbortSignal;
  /** Aborts calls in flight (a second Ctrl-C). */
  abortSignal?: AbortSignal;
  /** A known quota in requests per minute; without it the pace is learned from 429s. */
  rpm?: number;
  /** Cap on the batch's spend, all runs together; no new call starts once it is reached. */
  budgetPico?: bigint;
  /** What the batch cost in earlier runs (from the ledger), counted against the cap. */
  spentBeforePico?: bigint;
  progress?: (total: number) => Progress;
  onEvent?: (event: RunEvent) => void;
}

export type RunEvent =
  | { type: 'retry'; row: BatchRow; attempt: number; delayMs: number; reason: string }
  | { type: 'rateLimited'; row: BatchRow; delayMs: number; reason: string }
  | { type: 'settled'; row: BatchRow; outcome: RowOutcome };

export interface FailedRow {
  id: string;
  /** CSV line, when known. */
  line?: number;
  reason: string;
}

export interface RunSummary {
  batch: string;
  /** Valid rows in the file. */
  rows: number;
  rejected: RowProblem[];
  alreadyDone: number;
  /** Rows that failed for good in an earlier run and were not tried again. */
  alreadyFailed: FailedRow[];
  /** Finished rows whose prompt or parameters in the file differ from what was made (not redone). */
  changedSinceDone: FailedRow[];
  done: number;
  failed: FailedRow[];
  /** Rows left untouched because the run stopped (fatal error, quota, Ctrl-C). */
  notRun: number;
  /** Rows not started because the batch reached its budget; they run when the cap is raised. */
  overBudget: number;
  budgetPico?: bigint;
  /** Spend of the batch over all runs, when a budget is set. */
  batchSpendPico?: bigint;
  stopReason?: string;
  spendPico: bigint;
  /** Billed answers of models with no price (not in spendPico). */
  unpriced?: number;
  elapsedMs: number;
}

/** Reads the whole file first: bad rows are known before the first request. */
async function collectRows(options: LocalRunOptions, prices: PriceTable): Promise<{ rows: BatchRow[]; rejected: RowProblem[] }> {
  const rows: BatchRow[] = [];
  const rejected: RowProblem[] = [];
  for await (const read of readRows(options.csvPath, rowChecks(options.defaults, options.budgetPico, prices, options.reading))) {
    if ('problem' in read) rejected.push(read.problem);
    else rows.push({ ...read.row, batch: options.batch });
  }
  if (options.strict && rejected.length > 0) throw strictRejection(options.csvPath, rejected);
  return { rows, rejected };
}

/** True when `error` is what `signal` aborted with (not a failure of the call). */
function isAbortReason(error: unknown, signal: AbortSignal): boolean {
  return error === signal.reason || (error instanceof Error && error.name === 'AbortError');
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

  const summary: RunSummary = {
    batch: options.batch,
    rows: rows.length,
    rejected,
    alreadyDone: 0,
    alreadyFailed: [],
    changedSinceDone: [],
    done: 0,
    failed: [],
    notRun: 0,
    overBudget: 0,
    budgetPico: options.budgetPico,
    spendPico: 0n,
    elapsedMs: 0,
  };

  // Resume: a settled row's outcome is already on disk and in the ledger.
  const todo: BatchRow[] = [];
  const checkLimit = pLimit(32);
  const states = await Promise.all(rows.map((row) => checkLimit(() => context.store.readSidecar<Sidecar>(row.batch, row.id))));
  rows.forEach((row, index) => {
    const sidecar = states[index];
    const plan = planRow(row, sidecar, options);
    if (plan === 'run') todo.push(row);
    else if (plan === 'failed') summary.alreadyFailed.push({ id: row.id, line: row.line, reason: sidecar?.reason ?? 'failed' });
    else {
      summary.alreadyDone += 1;
      if (plan === 'doneChanged') summary.changedSinceDone.push({ id: row.id, line: row.line, reason: 'prompt or parameters changed since it was made' });
    }
  });

  const progress = options.progress?.(todo.length);
  const state: ProgressState = { done: 0, failed: 0, spendPico: 0n };
  // Each quota scope (the provider, see quotaScope) learns its own pace, as in queue mode.
  const pacers = new Map<string, LocalPacer>();
  const pacerFor = (row: BatchRow): LocalPacer => {
    const scope = quotaScope(row);
    let pacer = pacers.get(scope);
    if (!pacer) pacers.set(scope, (pacer = new LocalPacer(options.rpm)));
    return pacer;
  };
  const reach = new ReachWatch();
  const models = new ModelWatch();
  const waitSignal = AbortSignal.any([options.stopSignal, options.abortSignal].filter((signal): signal is AbortSignal => signal !== undefined));
  setMaxListeners(options.concurrency + 10, waitSignal);
  const budget = new LocalBudget(options.budgetPico, options.spentBeforePico ?? 0n);
  // Spend counts when an answer is billed, also one whose images then fail to save: the call's
  // reservation becomes its cost.
  const billedTo = (reservation: Reservation): RowContext => ({
    ...context,
    onBilled: async (_row, cost) => {
      state.spendPico += cost;
      await reservation.settle(cost);
    },
  });
  let stopReason: string | undefined;
  const stop = (reason: string): void => {
    stopReason ??= reason;
  };
  options.stopSignal?.addEventListener('abort', () => stop('interrupted'), { once: true });

  const settle = (row: BatchRow, outcome: RowOutcome): void => {
    if (outcome.status === 'done') state.done += 1;
    else {
      state.failed += 1;
      summary.failed.push({ id: row.id, line: row.line, reason: outcome.reason });
    }
    // Priced spend was counted when billed (onBilled); an answer billed without a price is here.
    if (outcome.costPico === undefined && outcome.billing !== undefined) state.unpriced = (state.unpriced ?? 0) + 1;
    progress?.update({ ...state });
    options.onEvent?.({ type: 'settled', row, outcome });
  };

  const runRow = async (row: BatchRow): Promise<void> => {
    let attempt = 1;
    let rateLimitWaits = 0;
    for (;;) {
      if (stopReason) {
        summary.notRun += 1;
        return;
      }
      const missing = models.stopped(row.batch, row.model);
      if (missing) {
        settle(row, { status: 'failed', reason: missing });
        return;
      }
      try {
        // Ctrl-C also ends the wait for a start slot (at a low pace, that wait is long).
        await pacerFor(row).acquire(waitSignal);
        if (stopReason) {
          summary.notRun += 1;
          return;
        }
        // The call's estimate is held against the cap until it is billed or ends unbilled.
        const reservation = await budget.reserve(reservationFor(row, context.prices), waitSignal);
        if (!reservation) {
          summary.overBudget += 1;
          return;
        }
        // The run may have stopped while this row waited for room.
        if (stopReason) {
          await reservation.release();
          summary.notRun += 1;
          return;
        }
        let outcome: RowOutcome;
        try {
          outcome = await generateRow(row, billedTo(reservation), { attempt, signal: options.abortSignal });
        } finally {
          await reservation.release();
        }
        reach.answered();
        pacerFor(row).succeeded();
        models.settled(row.batch, row.model, outcome);
        settle(row, outcome);
        return;
      } catch (error) {
        if (options.abortSignal?.aborted || (options.stopSignal?.aborted && waitSignal.aborted && isAbortReason(error, waitSignal))) {
          summary.notRun += 1;
          return;
        }
        const callError = asCallError(error);
        if (!callError.unreachable) reach.answered();
        const step = nextStep(callError, attempt, options.retry, rateLimitWaits);
        switch (step.action) {
          case 'waitForQuota':
            // A run does not wait hours for a per-day quota: it stops, the rows left for later.
            if (step.perDay) {
              stop(callError.message);
              break;
            }
            rateLimitWaits += 1;
            pacerFor(row).rateLimited(step.delayMs, step.namedQuota);
            options.onEvent?.({ type: 'rateLimited', row, delayMs: step.delayMs, reason: callError.message });
            break;
          case 'retry':
            options.onEvent?.({ type: 'retry', row, attempt, delayMs: step.delayMs, reason: callError.message });
            attempt += 1;
            try {
              await sleep(step.delayMs, options.abortSignal);
            } catch {
              summary.notRun += 1;
              return;
            }
            break;
          case 'fail': {
            settle(row, { status: 'failed', reason: step.reason });
            const unreachable = reach.gaveUp(callError);
            if (unreachable) stop(unreachable.message);
            return;
          }
          case 'stop':
            stop(step.reason);
            break;
        }
      }
    }
  };

  const limit = pLimit(options.concurrency);
  await Promise.all(todo.map((row) => limit(() => runRow(row))));
  progress?.stop();

  // Nothing of this batch is in flight now: temporary files of killed runs can go.
  await context.store.sweepAllPartials(options.batch).catch(() => undefined);

  summary.done = state.done;
  summary.spendPico = state.spendPico;
  summary.unpriced = state.unpriced ?? 0;
  if (options.budgetPico !== undefined) summary.batchSpendPico = budget.spentPico;
  summary.stopReason = stopReason;
  summary.elapsedMs = Date.now() - started;
  return summary;
}
