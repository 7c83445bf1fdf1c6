/**
 * The processor of an images job: the one-row step, with its error kinds mapped onto BullMQ
 * (see worker.ts for what each one does).
 */
import { DelayedError, RateLimitError, UnrecoverableError, WaitingError, type Job, type Queue } from 'bullmq';
import type { Config } from '../core/config.js';
import { asCallError, CallError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { QueueBudget, Reservation } from '../run/budget.js';
import { generateRow, type RowContext, type RowOutcome, type Sidecar } from '../run/generate.js';
import type { OutputStore } from '../output/storage.js';
import { quotaScope } from '../run/pacing.js';
import type { Pipeline } from '../run/pipeline.js';
import { ModelWatch, nextStep, ReachWatch, type NextStep } from '../run/retry-policy.js';
import type { CatalogState } from '../catalog/state.js';
import { finishBatchIfSettled } from './batch-finish.js';
import type { BatchState } from './batch-state.js';
import { reserveOrPark } from './budget-parking.js';
import { recordCall } from './call-record.js';
import type { WorkerMetrics } from './metrics.js';
import type { ImageJobData } from './queue.js';
import type { QuotaControl, ScopedQuotas } from './quota-control.js';
import type { CallsInFlight, ExitStatus, StopSignals } from './worker-stop.js';

export type SettledOutcome = RowOutcome | { status: 'failed'; reason: string };

export type JobResult = { images: string[] } | { alreadyDone: true };

export interface JobProcessorParts {
  config: Config;
  log: Logger;
  pipeline: Pipeline;
  queue: Queue<ImageJobData>;
  batches: BatchState;
  catalogs: CatalogState;
  quotas: ScopedQuotas;
  metrics: WorkerMetrics;
  budget: QueueBudget;
  calls: CallsInFlight;
  signals: StopSignals;
  exit: ExitStatus;
  /** Ends this worker with an exit status (the first reason given wins). */
  stopWith(code: number, reason: string): void;
  /** A worker asked to drain the queue stops on a per-day quota instead of waiting. */
  untilDrained: boolean | undefined;
  /** Called for every settled row (progress). */
  onSettled: ((row: ImageJobData['row'], outcome: SettledOutcome) => void) | undefined;
}

export class ImageJobProcessor {
  private readonly reach = new ReachWatch();
  private readonly models = new ModelWatch();

  constructor(private readonly parts: JobProcessorParts) {}

  /** Settles a job's row: done, failed for good, parked over budget or sent back (a thrown BullMQ error). */
  async process(job: Job<ImageJobData>, token?: string): Promise<JobResult> {
    const { row } = job.data;
    // A catalog row's done mark does not say for which content: its sidecar decides (finishedEarlier).
    if (!row.contentHash && (await this.parts.batches.isDone(row.batch, row.id))) return { alreadyDone: true };
    const output = await this.outputOf(job);
    if (await this.finishedEarlier(job, output.store)) return { alreadyDone: true };
    const missing = this.models.stopped(row.batch, row.model);
    if (missing) {
      await this.failForGood(job, missing, false, output.store);
      this.settle(row, { status: 'failed', reason: missing });
      throw new UnrecoverableError(missing);
    }
    const { budget, batches, pipeline, log } = this.parts;
    const reservation = await reserveOrPark(job, token, { budget, batches, prices: pipeline.prices, log });
    if (!reservation) throw new DelayedError();
    try {
      return await this.callRow(job, token, reservation, output);
    } finally {
      // Unbilled (an error, a refusal, a retry to come): the reservation goes. A no-op once billed.
      await reservation.release().catch((error: unknown) => log.warn({ batch: row.batch, row: row.id, err: (error as Error).message }, 'budget reservation not released; it lapses with the job lock'));
    }
  }

  /**
   * Where the job's row is written: the worker's output, or the one its batch was given (`out:`,
   * `enqueue --out`). One that cannot be opened (a bucket not there or not answering, a folder not
   * writable) is retried as a transient error, and fails the row unbilled once its attempts are
   * used, before any call: enqueueing again (or the catalog's next firing) queues it again.
   */
  private async outputOf(job: Job<ImageJobData>): Promise<RowContext> {
    const { row, out } = job.data;
    try {
      return await this.parts.pipeline.forOutput(out);
    } catch (error) {
      const message = (error as Error).message;
      const callError = new CallError('transient', out && message.includes(out) ? message : `the output ${out} cannot be used: ${message}`);
      const step = this.stepAfter(job, callError, job.attemptsMade + 1);
      if (step.action !== 'fail') {
        this.parts.log.warn({ batch: row.batch, row: row.id, attempt: job.attemptsMade + 1 }, `${callError.message}; tried again later`);
        throw callError;
      }
      const { reason } = step;
      this.parts.log.error({ batch: row.batch, row: row.id }, reason);
      await this.failForGood(job, reason, false);
      this.settle(row, { status: 'failed', reason });
      throw new UnrecoverableError(reason);
    }
  }

  /** A job recovered from a stalled worker may have been finished already: never pay twice. */
  private async finishedEarlier(job: Job<ImageJobData>, store: OutputStore): Promise<boolean> {
    const { row } = job.data;
    const sidecar = await store.readSidecar<Sidecar>(row.batch, row.id);
    if (sidecar?.status === 'done' && sidecar.contentHash === row.contentHash) {
      await this.markDone(job, store);
      return true;
    }
    return false;
  }

  /** One call of a job's row, its estimate held against the batch's budget. */
  private async callRow(job: Job<ImageJobData>, token: string | undefined, reservation: Reservation, output: RowContext): Promise<{ images: string[] }> {
    const { row } = job.data;
    const attempt = job.attemptsMade + 1;
    const quota = await this.parts.quotas.for(quotaScope(row));
    await this.waitForStartSlot(quota);

    let outcome: RowOutcome;
    const endCall = this.parts.calls.started();
    const callStartedAt = Date.now();
    const signal = this.parts.signals.forceAbort.signal;
    try {
      outcome = await generateRow(row, this.billedTo(output, reservation, endCall), { attempt, signal });
    } catch (error) {
      endCall();
      if (signal.aborted) throw error;
      return await this.afterCallError(job, token, quota, asCallError(error), attempt, output.store);
    }

    endCall();
    this.reach.answered();
    const latencyMs = Date.now() - callStartedAt;
    quota.succeeded();
    return await this.afterAnswer(job, outcome, attempt, latencyMs, output.store);
  }

  /** The provider's shared pace: waits for this call's start slot; a long 429 pause sends the job back. */
  private async waitForStartSlot(quota: QuotaControl): Promise<void> {
    const { forceAbort, slotWaits } = this.parts.signals;
    let slot: boolean;
    try {
      slot = await quota.waitForSlot(AbortSignal.any([forceAbort.signal, slotWaits.signal]));
    } catch (error) {
      // Stopping: a job that has not started its call goes back to the queue at once.
      if (slotWaits.signal.aborted && !forceAbort.signal.aborted) throw new RateLimitError();
      throw error;
    }
    if (!slot) throw new RateLimitError();
  }

  /**
   * A billed answer's cost replaces its call's reservation in the batch's spend counter, also
   * one whose images then fail to save: one counter in Redis for all workers, in picodollars.
   * `answered` ends the call for a stop's purposes: its answer is in the ledger, and what is left
   * (saving, bookkeeping in a Redis that may be gone) is no reason to hold a stop.
   */
  private billedTo(output: RowContext, reservation: Reservation, answered: () => void): RowContext {
    return {
      ...output,
      onBilled: (_row, cost) => {
        answered();
        return reservation.settle(cost);
      },
    };
  }

  /** An answered call: recorded, then the job done or failed for good with its row. */
  private async afterAnswer(job: Job<ImageJobData>, outcome: RowOutcome, attempt: number, latencyMs: number, store: OutputStore): Promise<{ images: string[] }> {
    const { row } = job.data;
    const { log } = this.parts;
    recordCall(this.parts.metrics, log, job, outcome, attempt, latencyMs);
    const modelStopped = this.models.settled(row.batch, row.model, outcome);
    if (modelStopped) log.warn({ batch: row.batch, model: row.model }, `rows of ${row.model} in batch ${row.batch} stop: ${modelStopped}`);
    this.settle(row, outcome);
    if (outcome.status === 'done') {
      await this.markDone(job, store);
      return { images: outcome.images.map((image) => image.file) };
    }
    await this.failForGood(job, outcome.reason, outcome.billing !== undefined, store);
    throw new UnrecoverableError(outcome.reason);
  }

  /** The attempt policy's next step for a job's failed attempt, with the attempts the job was queued with. */
  private stepAfter(job: Job<ImageJobData>, callError: CallError, attempt: number): NextStep {
    const { retry } = this.parts.config;
    return nextStep(callError, attempt, { ...retry, attempts: job.opts.attempts ?? retry.attempts }, job.data.rateLimitWaits ?? 0);
  }

  /** A failed call, as the retry policy says: the job waits for the quota, retries, fails for good or the worker stops. */
  private async afterCallError(job: Job<ImageJobData>, token: string | undefined, quota: QuotaControl, callError: CallError, attempt: number, store: OutputStore): Promise<never> {
    const { row } = job.data;
    const { log } = this.parts;
    this.parts.metrics.answered(callError.status ?? 'network');
    if (!callError.unreachable) this.reach.answered();
    const step = this.stepAfter(job, callError, attempt);
    switch (step.action) {
      case 'waitForQuota':
        return await this.waitForQuota(job, quota, step, callError);
      case 'stop':
        await this.stopForFatal(callError);
        await job.moveToWait(token);
        throw new WaitingError();
      case 'retry':
        log.info({ batch: row.batch, row: row.id, attempt, attempts: job.opts.attempts }, `transient failure: ${callError.message}`);
        // BullMQ retries it, after `backoffDelay` (its backoff strategy).
        throw callError;
      case 'fail':
        return await this.failAfterCall(job, step.reason, callError, store);
    }
  }

  /** A 429: every worker holds off; the job goes back to waiting without using an attempt. */
  private async waitForQuota(job: Job<ImageJobData>, quota: QuotaControl, step: Extract<NextStep, { action: 'waitForQuota' }>, callError: CallError): Promise<never> {
    const { row } = job.data;
    const { log } = this.parts;
    await quota.rateLimited(step.delayMs, step.namedQuota);
    if (step.perDay) {
      log.warn({ delayMs: step.delayMs }, `every worker pauses for ${Math.round(step.delayMs / 60_000)} min: ${callError.message}`);
      // A worker asked to drain the queue (and `run`) stops instead of waiting an hour.
      if (this.parts.untilDrained) this.parts.stopWith(1, `${callError.message}; the rows left wait in the queue`);
    } else {
      log.info({ batch: row.batch, row: row.id, delayMs: step.delayMs }, `rate limited: every worker waits ${step.delayMs} ms`);
    }
    // Counted with the job, so that the cap holds across workers and restarts.
    await job.updateData({ ...job.data, rateLimitWaits: (job.data.rateLimitWaits ?? 0) + 1 });
    throw new RateLimitError();
  }

  /** A row failed for good after its call; a provider given up on as unreachable also stops this worker. */
  private async failAfterCall(job: Job<ImageJobData>, reason: string, callError: CallError, store: OutputStore): Promise<never> {
    await this.failForGood(job, reason, false, store);
    this.settle(job.data.row, { status: 'failed', reason });
    const unreachable = this.reach.gaveUp(callError);
    if (unreachable) {
      // This worker only: the queue is not paused, since workers elsewhere may reach it.
      this.parts.log.error(`stopping this worker: ${unreachable.message}`);
      this.parts.stopWith(2, unreachable.message);
    }
    throw new UnrecoverableError(reason);
  }

  private async stopForFatal(error: CallError): Promise<void> {
    if (this.parts.exit.clean) {
      this.parts.log.error(`stopping: ${error.message}; the images queue is paused, the jobs stay waiting (fix the cause, then \`tokenhot-batch resume\`)`);
      await this.parts.queue.pause();
      await this.parts.batches.setPauseReason(error.message);
    }
    this.parts.stopWith(2, error.message);
  }

  private async markDone(job: Job<ImageJobData>, store: OutputStore): Promise<void> {
    const { row, catalog } = job.data;
    await this.parts.batches.markDone(row.batch, row.id);
    if (catalog && row.contentHash) await this.parts.catalogs.markFinished(catalog.name, row.id, row.contentHash);
    await this.finishBatch(job, store);
  }

  /** `store`: where the batch's manifest goes; none when the row's output could not be opened. */
  private async failForGood(job: Job<ImageJobData>, reason: string, billed: boolean, store?: OutputStore): Promise<void> {
    const { row, catalog } = job.data;
    await this.parts.batches.markFailed(row.batch, row.id, reason, row.line, billed);
    // Nothing of the row is queued any more: the catalog's next firing tries it again.
    if (catalog) await this.parts.catalogs.clearPending(catalog.name, row.id);
    await this.finishBatch(job, store);
  }

  /** The batch's last row settled: its manifest (and a catalog job's latest/ view) are written in its output, if it has one. */
  private async finishBatch(job: Job<ImageJobData>, store: OutputStore | undefined): Promise<void> {
    const { batches, log } = this.parts;
    await finishBatchIfSettled({ batches, store, log }, job.data);
  }

  private settle(row: ImageJobData['row'], outcome: SettledOutcome): void {
    this.parts.onSettled?.(row, outcome);
  }
}
