/**
 * The rows of one local run, each through the one-row step with its retries, `concurrency` at a
 * time. What they share lives here: the pace per quota scope, the budget, progress and the
 * reason the run stopped.
 */
import { setMaxListeners } from 'node:events';
import pLimit from 'p-limit';
import { asCallError, type CallError } from '../core/errors.js';
import { LocalBudget, reservationFor, type Reservation } from '../run/budget.js';
import { generateRow, type RowContext, type RowOutcome } from '../run/generate.js';
import type { Progress, ProgressState } from '../run/progress.js';
import { sleep } from '../run/rate-gate.js';
import { ModelWatch, nextStep, ReachWatch } from '../run/retry-policy.js';
import type { BatchRow } from '../core/types.js';
import { LocalPacers } from './pacers.js';
import type { LocalRunOptions } from './run-options.js';
import type { RunSummary } from './run-summary.js';

/** How far a row has got: its attempt (429s do not count) and the 429s it waited out. */
interface RowTries {
  attempt: number;
  rateLimitWaits: number;
}

/** After a failed call: `next` goes round the row's loop again (which ends it if the run stopped). */
type AfterFailure = 'next' | 'ended';

/** True when `error` is what `signal` aborted with (not a failure of the call). */
function isAbortReason(error: unknown, signal: AbortSignal): boolean {
  return error === signal.reason || (error instanceof Error && error.name === 'AbortError');
}

export class LocalRowRunner {
  private readonly state: ProgressState = { done: 0, failed: 0, spendPico: 0n };
  private readonly progress: Progress | undefined;
  private readonly pacers: LocalPacers;
  private readonly reach = new ReachWatch();
  private readonly models = new ModelWatch();
  /** Ends the waits for start slots and budget room on a stop or an abort. */
  private readonly waitSignal: AbortSignal;
  private readonly budget: LocalBudget;
  private stopReason: string | undefined;

  /** `summary` gets the rows' counts as they settle; `rowsToRun` sizes the progress. */
  constructor(
    private readonly options: LocalRunOptions,
    private readonly context: RowContext,
    private readonly summary: RunSummary,
    rowsToRun: number,
  ) {
    this.progress = options.progress?.(rowsToRun);
    this.pacers = new LocalPacers(options.rpm);
    this.waitSignal = AbortSignal.any([options.stopSignal, options.abortSignal].filter((signal): signal is AbortSignal => signal !== undefined));
    setMaxListeners(options.concurrency + 10, this.waitSignal);
    this.budget = new LocalBudget(options.budgetPico, options.spentBeforePico ?? 0n);
    options.stopSignal?.addEventListener('abort', () => this.stop('interrupted'), { once: true });
  }

  /** Runs `rows`, `concurrency` at a time, and ends the progress. */
  async runAll(rows: BatchRow[]): Promise<void> {
    const limit = pLimit(this.options.concurrency);
    try {
      await Promise.all(rows.map((row) => limit(() => this.runRow(row))));
    } finally {
      // Ended whatever happened: on a terminal the bar gives the cursor back.
      this.progress?.stop();
    }
  }

  /** The run's totals into the summary, once every row has ended. */
  fillSummary(): void {
    this.summary.done = this.state.done;
    this.summary.spendPico = this.state.spendPico;
    this.summary.unpriced = this.state.unpriced ?? 0;
    if (this.options.budgetPico !== undefined) this.summary.batchSpendPico = this.budget.spentPico;
    this.summary.stopReason = this.stopReason;
  }

  /** One row to its end (settled, not run or over budget), tried again as the retry policy says. */
  private async runRow(row: BatchRow): Promise<void> {
    const tries: RowTries = { attempt: 1, rateLimitWaits: 0 };
    for (;;) {
      if (this.stopReason) return this.notRun();
      const missing = this.models.stopped(row.batch, row.model);
      if (missing) return this.settle(row, { status: 'failed', reason: missing });
      try {
        return await this.callOnce(row, tries.attempt);
      } catch (error) {
        if (this.endedByStop(error)) return this.notRun();
        if ((await this.afterFailure(row, asCallError(error), tries)) === 'ended') return;
      }
    }
  }

  /** One call of the row once it has a start slot and room in the budget; a failed call throws. */
  private async callOnce(row: BatchRow, attempt: number): Promise<void> {
    // Ctrl-C also ends the wait for a start slot (at a low pace, that wait is long).
    await this.pacers.for(row).acquire(this.waitSignal);
    if (this.stopReason) return this.notRun();
    // The call's estimate is held against the cap until it is billed or ends unbilled.
    const reservation = await this.budget.reserve(reservationFor(row, this.context.prices), this.waitSignal);
    if (!reservation) {
      this.summary.overBudget += 1;
      this.options.onEvent?.({ type: 'overBudget', row, spendPico: this.budget.spentPico, budgetPico: this.options.budgetPico ?? 0n });
      return;
    }
    // The run may have stopped while this row waited for room.
    if (this.stopReason) {
      await reservation.release();
      return this.notRun();
    }
    let outcome: RowOutcome;
    try {
      outcome = await generateRow(row, this.billedTo(reservation), { attempt, signal: this.options.abortSignal });
    } finally {
      await reservation.release();
    }
    this.reach.answered();
    this.pacers.for(row).succeeded();
    this.models.settled(row.batch, row.model, outcome);
    this.settle(row, outcome);
  }

  /** What a failed call leads to, as the retry policy says. */
  private async afterFailure(row: BatchRow, callError: CallError, tries: RowTries): Promise<AfterFailure> {
    if (!callError.unreachable) this.reach.answered();
    const step = nextStep(callError, tries.attempt, this.options.retry, tries.rateLimitWaits);
    switch (step.action) {
      case 'waitForQuota':
        // A run does not wait hours for a per-day quota: it stops, the rows left for later.
        if (step.perDay) {
          this.stop(callError.message);
          return 'next';
        }
        tries.rateLimitWaits += 1;
        this.pacers.for(row).rateLimited(step.delayMs, step.namedQuota);
        this.options.onEvent?.({ type: 'rateLimited', row, delayMs: step.delayMs, reason: callError.message });
        return 'next';
      case 'retry':
        this.options.onEvent?.({ type: 'retry', row, attempt: tries.attempt, delayMs: step.delayMs, reason: callError.message });
        tries.attempt += 1;
        try {
          await sleep(step.delayMs, this.options.abortSignal);
        } catch {
          this.notRun();
          return 'ended';
        }
        return 'next';
      case 'fail': {
        this.settle(row, { status: 'failed', reason: step.reason });
        const unreachable = this.reach.gaveUp(callError);
        if (unreachable) this.stop(unreachable.message);
        return 'ended';
      }
      case 'stop':
        this.stop(step.reason);
        return 'next';
    }
  }

  /** True when the run's stop or abort ended the row's wait or call: not a failure of the row. */
  private endedByStop(error: unknown): boolean {
    const { stopSignal, abortSignal } = this.options;
    return Boolean(abortSignal?.aborted || (stopSignal?.aborted && this.waitSignal.aborted && isAbortReason(error, this.waitSignal)));
  }

  // Spend counts when an answer is billed, also one whose images then fail to save: the call's
  // reservation becomes its cost.
  private billedTo(reservation: Reservation): RowContext {
    return {
      ...this.context,
      onBilled: async (_row, cost) => {
        this.state.spendPico += cost;
        await reservation.settle(cost);
      },
    };
  }

  private settle(row: BatchRow, outcome: RowOutcome): void {
    if (outcome.status === 'done') this.state.done += 1;
    else {
      this.state.failed += 1;
      this.summary.failed.push({ id: row.id, line: row.line, reason: outcome.reason });
    }
    // Priced spend was counted when billed (onBilled); an answer billed without a price is here.
    if (outcome.costPico === undefined && outcome.billing !== undefined) this.state.unpriced = (this.state.unpriced ?? 0) + 1;
    this.progress?.update({ ...this.state });
    this.options.onEvent?.({ type: 'settled', row, outcome });
  }

  private notRun(): void {
    this.summary.notRun += 1;
  }

  /** The first reason given is the run's. */
  private stop(reason: string): void {
    this.stopReason ??= reason;
  }
}
