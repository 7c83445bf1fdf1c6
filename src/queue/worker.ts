/**
 * The BullMQ worker of the images queue: the same one-row step as the in-process runner, with
 * the error kinds mapped onto BullMQ:
 *
 * - rateLimited: `queue.rateLimit(delay)` stops every worker on every machine from taking jobs
 *   for that long, and `RateLimitError` puts the job back to waiting without using an attempt
 *   (`maxStartedAttempts` guards against a job bouncing forever).
 * - transient: thrown, so BullMQ retries it with our backoff (exponential, full jitter).
 * - row failed for good: `UnrecoverableError` with the reason (also kept in the batch state).
 * - fatal: the queue is paused so no worker burns through jobs, the job goes back to waiting,
 *   and this worker exits non-zero with the cause.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { DelayedError, RateLimitError, UnrecoverableError, WaitingError, Worker, type Job, type Queue } from 'bullmq';
import { BatchState } from './batch-state.js';
import { CatalogState } from '../catalog/state.js';
import { startCatalogWorker } from '../catalog/worker.js';
import { describeBudget, QueueBudget, reservationFor, type Reservation } from '../run/budget.js';
import type { Config } from '../core/config.js';
import { asCallError, CallError, UsageError } from '../core/errors.js';
import { generateRow, type RowContext, type RowOutcome, type Sidecar } from '../run/generate.js';
import type { Logger } from '../core/log.js';
import { createPipeline, type Pipeline } from '../run/pipeline.js';
import { connectRedis, describeRedis, evictionWarning, IMAGES_QUEUE, imagesQueue, type ImageJobData, type QueueSettings } from './queue.js';
import { serveMetrics, WorkerMetrics } from './metrics.js';
import { tokenCountsOf } from '../cost/billing.js';
import { picoToUsd } from '../cost/pricing.js';
import { LONGEST_SLOT_WAIT_MS, QuotaControl, ScopedQuotas } from './quota-control.js';
import { backoffDelay, ModelWatch, nextStep, ReachWatch } from '../run/retry-policy.js';
import { quotaScope } from '../run/pacing.js';

export interface WorkerOptions {
  settings: QueueSettings;
  concurrency: number;
  /** Exit once the queue has nothing waiting, delayed or active. */
  untilDrained?: boolean;
  /** A proactive quota in requests per minute, shared by all workers (BullMQ global rate limit). */
  rpm?: number;
  /** A cap on calls in flight across all workers (BullMQ global concurrency). */
  globalConcurrency?: number;
  /** How long a job's lock lasts without renewal; a killed worker's jobs come back after it. */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** How long a shutdown waits for calls in flight before giving up on them. */
  shutdownTimeoutMs?: number;
  log: Logger;
  /** Also run the catalog worker (scheduled catalog firings). @default true */
  catalog?: boolean;
  /** Serves Prometheus metrics on this port (0: any free port). */
  metricsPort?: number;
  metricsHost?: string;
  /** Called for every settled row (progress). */
  onSettled?: (row: ImageJobData['row'], outcome: RowOutcome | { status: 'failed'; reason: string }) => void;
}

export interface WorkerExit {
  code: number;
  reason?: string;
}

export interface RunningWorker {
  /** The port metrics are served on, when asked for. */
  metricsPort?: number;
  /** Jobs left in the images queue (waiting, delayed, active), for progress and ETA. */
  remaining(): Promise<number>;
  /** Resolves when the worker has stopped. */
  done: Promise<WorkerExit>;
  /** Stops taking jobs and waits for calls in flight (up to the shutdown timeout; `force` aborts them). */
  stop(force?: boolean): Promise<void>;
  pipeline: Pipeline;
}

/**
 * A backstop on starts: a job goes back to waiting on each 429 (capped by the attempt policy)
 * and each time its start slot is too far off; neither uses an attempt.
 */
const MAX_STARTED_ATTEMPTS = 500;

/** How far out an over-budget job is parked; raising the cap promotes it at once. */
const PARK_MS = 30 * 24 * 3600 * 1000;

/** A paused queue cannot be drained: `--until-drained` (and `run`) say so at once instead of waiting forever. */
export async function refusePausedQueue(queue: Queue<ImageJobData>, batches: BatchState): Promise<void> {
  if (!(await queue.isPaused())) return;
  const reason = await batches.pauseReason();
  throw new UsageError(`the images queue is paused${reason ? ` (${reason})` : ''}: nothing can drain it; fix the cause, then \`tokenhot-batch resume\``);
}

export async function startWorker(config: Config, options: WorkerOptions): Promise<RunningWorker> {
  const { settings, log } = options;
  const connection = await connectRedis(settings.redisUrl, 'worker');
  const warning = await evictionWarning(connection);
  if (warning) log.warn(warning);
  const pipeline = await createPipeline(config);
  const queue = imagesQueue(settings, connection);
  // The worker's own listener reports a lost Redis; without one BullMQ prints each error raw.
  queue.on('error', () => undefined);
  const batches = new BatchState(connection, settings.prefix);
  const catalogs = new CatalogState(connection, settings.prefix);
  if (options.untilDrained) {
    try {
      await refusePausedQueue(queue, batches);
    } catch (error) {
      await queue.close();
      await pipeline.close();
      connection.disconnect();
      throw error;
    }
  }
  const quotas = new ScopedQuotas((scope) => new QuotaControl(queue, connection, settings.prefix, log, LONGEST_SLOT_WAIT_MS, scope), { rpm: options.rpm, globalConcurrency: options.globalConcurrency });
  const metrics = new WorkerMetrics();
  metrics.concurrency.set(options.concurrency);
  const metricsServer =
    options.metricsPort === undefined
      ? undefined
      : await serveMetrics(metrics, options.metricsPort, options.metricsHost ?? '127.0.0.1', async () => {
          const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized');
          for (const [state, count] of Object.entries(counts)) metrics.queueDepth.set({ state }, count);
          for (const [scope, rate] of await quotas.rates()) metrics.pace.set({ scope: scope || 'all' }, rate ?? 0);
        });

  let exit: WorkerExit = { code: 0 };
  const reach = new ReachWatch();
  const models = new ModelWatch();
  let stopping: Promise<void> | undefined;
  // What a stop waits for: a call under way is billed, so it is worth finishing and recording.
  let callsInFlight = 0;
  const callStarted = (): (() => void) => {
    const endMetric = metrics.callStarted();
    callsInFlight += 1;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      callsInFlight -= 1;
      endMetric();
    };
  };

  const settle = (row: ImageJobData['row'], outcome: RowOutcome | { status: 'failed'; reason: string }): void => options.onSettled?.(row, outcome);

  // Aborts calls in flight only on a forced shutdown. BullMQ's own signal (a lost job lock) is
  // deliberately not used: a call under way is billed whatever happens, so it is better finished
  // and recorded, even if another worker has taken the job meanwhile.
  const forceAbort = new AbortController();
  const signal = forceAbort.signal;
  // Aborted when the worker starts to stop: ends the waits for start slots, not calls.
  const slotWaits = new AbortController();
  setMaxListeners(options.concurrency + 10, slotWaits.signal);
  // Every call in flight listens to it: as many listeners as the concurrency, not a leak.
  setMaxListeners(options.concurrency + 10, signal);

  const lockDurationMs = options.lockDurationMs ?? 30_000;
  // A call's reservation lasts as long as its job's lock: a killed worker's lapse with its locks.
  const budget = new QueueBudget(batches, lockDurationMs, (jobIds) => wakeParked(jobIds));
  // A billed answer's cost replaces its call's reservation in the batch's spend counter, also
  // one whose images then fail to save: one counter in Redis for all workers, in picodollars.
  // `answered` ends the call for a stop's purposes: its answer is in the ledger, and what is left
  // (saving, bookkeeping in a Redis that may be gone) is no reason to hold a stop.
  const billedTo = (reservation: Reservation, answered: () => void): RowContext => ({
    ...pipeline,
    onBilled: (_row, cost) => {
      answered();
      return reservation.settle(cost);
    },
  });

  const processJob = async (job: Job<ImageJobData>, token?: string): Promise<{ images: string[] } | { alreadyDone: true }> => {
    const { row } = job.data;
    // A job recovered from a stalled worker may have been finished already: never pay twice.
    // A catalog row's done mark does not say for which content, so its sidecar decides.
    if (!row.contentHash && (await batches.isDone(row.batch, row.id))) return { alreadyDone: true };
    const sidecar = await pipeline.store.readSidecar<Sidecar>(row.batch, row.id);
    if (sidecar?.status === 'done' && sidecar.contentHash === row.contentHash) {
      await batches.markDone(row.batch, row.id);
      if (job.data.catalog && row.contentHash) await catalogs.markFinished(job.data.catalog.name, row.id, row.contentHash);
      return { alreadyDone: true };
    }
    const missing = models.stopped(row.batch, row.model);
    if (missing) {
      await failForGood(job, missing, false);
      settle(row, { status: 'failed', reason: missing });
      throw new UnrecoverableError(missing);
    }
    const reservation = await reserveOrPark(job, token);
    if (!reservation) throw new DelayedError();
    try {
      return await callRow(job, token, reservation);
    } finally {
      // Unbilled (an error, a refusal, a retry to come): the reservation goes. A no-op once billed.
      await reservation.release().catch((error: unknown) => log.warn({ batch: row.batch, row: row.id, err: (error as Error).message }, 'budget reservation not released; it lapses with the job lock'));
    }
  };

  /** One call of a job's row, its estimate held against the batch's budget. */
  const callRow = async (job: Job<ImageJobData>, token: string | undefined, reservation: Reservation): Promise<{ images: string[] }> => {
    const { row } = job.data;
    const attempt = job.attemptsMade + 1;
    // The provider's shared pace: wait for this call's start slot; a long 429 pause sends the job back.
    const quota = await quotas.for(quotaScope(row));
    let slot: boolean;
    try {
      slot = await quota.waitForSlot(AbortSignal.any([signal, slotWaits.signal]));
    } catch (error) {
      // Stopping: a job that has not started its call goes back to the queue at once.
      if (slotWaits.signal.aborted && !signal.aborted) throw new RateLimitError();
      throw error;
    }
    if (!slot) throw new RateLimitError();

    let outcome: RowOutcome;
    const endCall = callStarted();
    const callStartedAt = Date.now();
    try {
      outcome = await generateRow(row, billedTo(reservation, endCall), { attempt, signal });
    } catch (error) {
      endCall();
      if (signal?.aborted) throw error;
      const callError = asCallError(error);
      metrics.answered(callError.status ?? 'network');
      if (!callError.unreachable) reach.answered();
      const rateLimitWaits = job.data.rateLimitWaits ?? 0;
      const step = nextStep(callError, attempt, { ...config.retry, attempts: job.opts.attempts ?? config.retry.attempts }, rateLimitWaits);
      switch (step.action) {
        case 'waitForQuota': {
          await quota.rateLimited(step.delayMs, step.namedQuota);
          if (step.perDay) {
            log.warn({ delayMs: step.delayMs }, `every worker pauses for ${Math.round(step.delayMs / 60_000)} min: ${callError.message}`);
            // A worker asked to drain the queue (and `run`) stops instead of waiting an hour.
            if (options.untilDrained) stopWith(1, `${callError.message}; the rows left wait in the queue`);
          } else {
            log.info({ batch: row.batch, row: row.id, delayMs: step.delayMs }, `rate limited: every worker waits ${step.delayMs} ms`);
          }
          // Counted with the job, so that the cap holds across workers and restarts.
          await job.updateData({ ...job.data, rateLimitWaits: rateLimitWaits + 1 });
          throw new RateLimitError();
        }
        case 'stop':
          await stopForFatal(callError);
          await job.moveToWait(token);
          throw new WaitingError();
        case 'retry':
          log.info({ batch: row.batch, row: row.id, attempt, attempts: job.opts.attempts }, `transient failure: ${callError.message}`);
          // BullMQ retries it, after `backoffDelay` (its backoff strategy).
          throw callError;
        case 'fail': {
          await failForGood(job, step.reason, false);
          settle(row, { status: 'failed', reason: step.reason });
          const unreachable = reach.gaveUp(callError);
          if (unreachable) {
            // This worker only: the queue is not paused, since workers elsewhere may reach it.
            log.error(`stopping this worker: ${unreachable.message}`);
            stopWith(2, unreachable.message);
          }
          throw new UnrecoverableError(step.reason);
        }
      }
    }

    endCall();
    reach.answered();
    const latencyMs = Date.now() - callStartedAt;
    quota.succeeded();
    record(job, outcome, attempt, latencyMs);
    const modelStopped = models.settled(row.batch, row.model, outcome);
    if (modelStopped) log.warn({ batch: row.batch, model: row.model }, `rows of ${row.model} in batch ${row.batch} stop: ${modelStopped}`);
    settle(row, outcome);
    if (outcome.status === 'done') {
      await batches.markDone(row.batch, row.id);
      if (job.data.catalog && row.contentHash) await catalogs.markFinished(job.data.catalog.name, row.id, row.contentHash);
      return { images: outcome.images.map((image) => image.file) };
    }
    await failForGood(job, outcome.reason, outcome.billing !== undefined);
    throw new UnrecoverableError(outcome.reason);
  };

  const worker = new Worker<ImageJobData>(IMAGES_QUEUE, processJob, {
    connection,
    prefix: settings.prefix,
    concurrency: options.concurrency,
    name: `${hostname()}:${process.pid}`,
    maxStartedAttempts: MAX_STARTED_ATTEMPTS,
    lockDuration: lockDurationMs,
    stalledInterval: options.stalledIntervalMs ?? 15_000,
    maxStalledCount: 3,
    // Calls take up to minutes; a rate-limited worker re-checks at least this often.
    maximumRateLimitDelay: 30_000,
    settings: { backoffStrategy: (attemptsMade: number) => backoffDelay(attemptsMade, config.retry) },
    autorun: false,
  });
  worker.on('error', (error) => log.warn({ err: error.message }, 'worker error (Redis connection?)'));
  const catalogWorker = options.catalog === false ? undefined : startCatalogWorker(settings, connection, queue, batches, config, pipeline.prices, log);
  worker.on('failed', (job, error) => {
    // Billed failures were logged with their tokens; this covers the ones given up on.
    if (job && error instanceof UnrecoverableError && /gave up after/.test(error.message)) {
      log.warn({ batch: job.data.row.batch, row: job.data.row.id, jobId: job.id }, `row failed: ${error.message}`);
    }
  });

  /** Metrics and the log line of a settled call: batch, job, attempt, latency, status, tokens. */
  function record(job: Job<ImageJobData>, outcome: RowOutcome, attempt: number, latencyMs: number): void {
    const { row } = job.data;
    const httpStatus = outcome.status === 'failed' && outcome.httpStatus ? outcome.httpStatus : 200;
    metrics.answered(httpStatus);
    metrics.settled(outcome.status);
    const counts = outcome.billing ? tokenCountsOf(outcome.billing) : undefined;
    const costUsd = outcome.costPico === undefined ? undefined : picoToUsd(outcome.costPico);
    if (counts) metrics.billed(counts, outcome.status === 'done' ? outcome.images.length : 0, costUsd);
    const fields = {
      batch: row.batch,
      row: row.id,
      jobId: job.id,
      attempt,
      latencyMs,
      status: outcome.status,
      httpStatus,
      ...(counts ? { promptTokens: counts.promptTokens, imageTokens: counts.imageOutputTokens, textTokens: counts.textOutputTokens, thoughtsTokens: counts.thoughtsTokens } : {}),
      ...(costUsd !== undefined ? { costUsd } : {}),
    };
    if (outcome.status === 'done') log.info(fields, 'row done');
    else log.warn(fields, `row failed: ${outcome.reason}`);
  }

  async function failForGood(job: Job<ImageJobData>, reason: string, billed: boolean): Promise<void> {
    const { row, catalog } = job.data;
    await batches.markFailed(row.batch, row.id, reason, row.line, billed);
    // Nothing of the row is queued any more: the catalog's next firing tries it again.
    if (catalog) await catalogs.clearPending(catalog.name, row.id);
  }

  /**
   * Holds the call's estimated cost against its batch's budget. A call that does not fit does
   * not start: the job is parked (delayed, far out) and listed as over budget, not failed, until
   * room is freed (calls in flight that cost less than they held, or ended unbilled) or
   * `tokenhot-batch budget` raises the cap; either sets parked jobs going.
   */
  async function reserveOrPark(job: Job<ImageJobData>, token: string | undefined): Promise<Reservation | undefined> {
    const { row } = job.data;
    const jobId = job.id!;
    const held = await budget.reserve(row.batch, jobId, token ?? randomUUID(), reservationFor(row, pipeline.prices));
    if ('reservation' in held) return held.reservation;
    const { spendPico, reservedPico, budgetPico } = held.refused;
    await job.moveToDelayed(Date.now() + PARK_MS, token);
    log.info({ batch: row.batch, row: row.id }, `over budget: ${describeBudget(spendPico, budgetPico, reservedPico)}; row parked until there is room`);
    // Set going while it was being parked (so its promotion found it still active): go now.
    if (!(await batches.isOverBudget(row.batch, jobId))) await job.promote().catch(() => undefined);
    return undefined;
  }

  /** Parked jobs that now fit (or may: they park again if another row took the room first). */
  async function wakeParked(jobIds: string[]): Promise<void> {
    for (const jobId of jobIds) {
      const job = await queue.getJob(jobId);
      // One still being parked is set going by its parker (reserveOrPark).
      if (job && (await job.isDelayed())) await job.promote().catch(() => undefined);
    }
  }

  async function stopForFatal(error: CallError): Promise<void> {
    if (exit.code === 0) {
      log.error(`stopping: ${error.message}; the images queue is paused, the jobs stay waiting (fix the cause, then \`tokenhot-batch resume\`)`);
      await queue.pause();
      await batches.setPauseReason(error.message);
    }
    stopWith(2, error.message);
  }

  /** Ends this worker with an exit status (the first reason given wins). */
  function stopWith(code: number, reason: string): void {
    if (exit.code === 0) exit = { code, reason };
    // Not awaited: close() waits for the very job that called this to finish.
    setImmediate(() => void stop());
  }

  const stop = (force = false): Promise<void> => {
    stopping ??= (async () => {
      const timeout = options.shutdownTimeoutMs ?? 120_000;
      if (force) forceAbort.abort(new Error('worker stopped'));
      slotWaits.abort(new Error('worker stopping'));
      const closing = worker.close(force).catch(() => undefined);
      const closed = await closeWithin(closing, timeout, () => callsInFlight);
      if (closed !== 'closed') {
        log.warn(
          closed === 'timeout'
            ? `${callsInFlight} call(s) still in flight after ${Math.round(timeout / 1000)} s: leaving them; their jobs come back as stalled`
            : `no call in flight, but the worker could not close in ${IDLE_CLOSE_MS / 1000} s${connection.status === 'ready' ? '' : ' (Redis cannot be reached)'}: leaving; any job still active comes back as stalled`,
        );
        // Calls left now may have been billed without reaching the ledger: not a clean exit.
        if (closed === 'timeout' && callsInFlight > 0 && exit.code === 0) exit = { code: 1, reason: `left ${callsInFlight} call(s) in flight at the shutdown timeout; their answers, if billed, are not in the ledger` };
        forceAbort.abort(new Error('shutdown timeout'));
        void worker.close(true).catch(() => undefined);
        void worker.disconnect().catch(() => undefined);
      }
      // Bounded: a Redis that does not answer must not hold the process (the ledger is already
      // on disk, line by line, so nothing here is needed to keep a billed answer).
      metricsServer?.server.closeAllConnections();
      await within(
        Promise.allSettled([
          catalogWorker?.close(),
          new Promise((resolve) => (metricsServer ? metricsServer.server.close(resolve) : resolve(undefined))),
          queue.close(),
          pipeline.close(),
          quotas.close(),
        ]),
        closed === 'closed' ? CLEANUP_MS : LEFT_CLEANUP_MS,
      );
      budget.close();
      connection.disconnect();
      stopped();
    })();
    return stopping;
  };
  let stopped!: () => void;
  const stoppedPromise = new Promise<void>((resolve) => (stopped = resolve));

  const done = (async (): Promise<WorkerExit> => {
    const drainWatch = options.untilDrained ? watchDrained(queue, batches, () => void stop()) : undefined;
    // `run()` may never return once its Redis is gone: a finished stop ends the worker as well.
    await Promise.race([worker.run().catch((error: unknown) => log.warn({ err: (error as Error).message }, 'worker loop ended')), stoppedPromise]);
    drainWatch?.stop();
    await stop();
    return exit;
  })();

  log.info({ redis: describeRedis(settings.redisUrl), concurrency: options.concurrency }, 'worker started');
  if (metricsServer) log.info({ port: metricsServer.port }, `metrics on http://${options.metricsHost ?? '127.0.0.1'}:${metricsServer.port}/metrics`);
  const remaining = async (): Promise<number> => {
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    return Object.values(counts).reduce((sum, count) => sum + count, 0);
  };
  return { done, stop, pipeline, remaining, ...(metricsServer ? { metricsPort: metricsServer.port } : {}) };
}

/** With no call in flight, how long a stop waits for BullMQ to close before leaving without it. */
const IDLE_CLOSE_MS = 3_000;
/** Longest wait for the cleanup after the worker has closed, and after it was left. */
const CLEANUP_MS = 5_000;
const LEFT_CLEANUP_MS = 1_000;

/** Waits for `promise` for at most `ms`; never rejects. */
async function within(promise: Promise<unknown> | undefined, ms: number): Promise<'done' | 'timeout'> {
  if (!promise) return 'done';
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  const result = await Promise.race([promise.then(() => 'done' as const, () => 'done' as const), timedOut]);
  clearTimeout(timer);
  return result;
}

/**
 * Waits for the worker to close: as long as `timeout` while calls are in flight, but only
 * `IDLE_CLOSE_MS` once none is (closing is then only BullMQ talking to Redis, which may be gone).
 */
async function closeWithin(closing: Promise<unknown>, timeout: number, inFlight: () => number): Promise<'closed' | 'timeout' | 'stuck'> {
  const started = Date.now();
  let closed = false;
  void closing.then(() => (closed = true));
  let idleSince: number | undefined;
  while (!closed) {
    const now = Date.now();
    if (now - started >= timeout) return 'timeout';
    if (inFlight() > 0) idleSince = undefined;
    else if ((idleSince ??= now) <= now - IDLE_CLOSE_MS) return 'stuck';
    await within(closing, 100);
  }
  return 'closed';
}

/** Calls `onDrained` once nothing is waiting, active or delayed (but jobs parked over budget). */
function watchDrained(queue: ReturnType<typeof imagesQueue>, batches: BatchState, onDrained: () => void): { stop(): void } {
  let stopped = false;
  const check = async (): Promise<void> => {
    while (!stopped) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      if (stopped) return;
      try {
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
        const { delayed, ...others } = counts;
        if (Object.values(others).every((count) => count === 0) && (delayed ?? 0) <= (await batches.parkedTotal())) {
          onDrained();
          return;
        }
      } catch {
        // Redis away for a moment: try again.
      }
    }
  };
  void check();
  return {
    stop() {
      stopped = true;
    },
  };
}
