/**
 * The BullMQ worker of the images queue: the same one-row step as the in-process runner, with
 * the error kinds mapped onto BullMQ (the mapping is job-processor.ts):
 *
 * - rateLimited: `queue.rateLimit(delay)` stops every worker on every machine from taking jobs
 *   for that long, and `RateLimitError` puts the job back to waiting without using an attempt
 *   (`maxStartedAttempts` guards against a job bouncing forever).
 * - transient: thrown, so BullMQ retries it with our backoff (exponential, full jitter).
 * - row failed for good: `UnrecoverableError` with the reason (also kept in the batch state).
 * - fatal: the queue is paused so no worker burns through jobs, the job goes back to waiting,
 *   and this worker exits non-zero with the cause (and `run.stopped` goes to the batches left).
 *
 * Beside it run the catalog worker (scheduled firings) and the webhooks worker (notify/).
 */
import type { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { BatchState } from './batch-state.js';
import { CatalogState } from '../catalog/state.js';
import { startCatalogWorker } from '../catalog/worker.js';
import { QueueBudget } from '../run/budget.js';
import type { Config } from '../core/config.js';
import { UsageError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { createPipeline, type Pipeline } from '../run/pipeline.js';
import { bucketsWithLeftovers } from '../output/spool-leftovers.js';
import { connectRedis, describeRedis, evictionWarning, imagesQueue, type ImageJobData, type QueueSettings } from './queue.js';
import { serveMetrics, WorkerMetrics } from './metrics.js';
import { LONGEST_SLOT_WAIT_MS, QuotaControl, ScopedQuotas } from './quota-control.js';
import { wakeParked } from './budget-parking.js';
import { watchDrained } from './drain-watch.js';
import { createImagesWorker } from './images-worker.js';
import { ImageJobProcessor, type SettledOutcome } from './job-processor.js';
import { CallsInFlight, ExitStatus, StopSignals, WorkerStop, type WorkerExit } from './worker-stop.js';
import { announceStopped } from '../notify/batch-notices.js';
import { openWorkerWebhooks, type WorkerWebhooks } from '../notify/webhook-queue.js';

export type { WorkerExit } from './worker-stop.js';

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
  onSettled?: (row: ImageJobData['row'], outcome: SettledOutcome) => void;
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

/** A paused queue cannot be drained: `--until-drained` (and `run`) say so at once instead of waiting forever. */
export async function refusePausedQueue(queue: Queue<ImageJobData>, batches: BatchState): Promise<void> {
  if (!(await queue.isPaused())) return;
  const reason = await batches.pauseReason();
  throw new UsageError(`the images queue is paused${reason ? ` (${reason})` : ''}: nothing can drain it; fix the cause, then \`tokenhot-batch resume\``);
}

export async function startWorker(config: Config, options: WorkerOptions): Promise<RunningWorker> {
  const { settings, log } = options;
  const { connection, pipeline, queue, batches, webhooks } = await openQueue(config, options);
  const catalogs = new CatalogState(connection, settings.prefix);
  if (options.untilDrained) await refusePausedQueueOrClose(queue, batches, pipeline, connection);
  await shipLeftoverSpools(pipeline, log);
  const quotas = new ScopedQuotas((scope) => new QuotaControl(queue, connection, settings.prefix, log, LONGEST_SLOT_WAIT_MS, scope), { rpm: options.rpm, globalConcurrency: options.globalConcurrency });
  const metrics = new WorkerMetrics();
  metrics.concurrency.set(options.concurrency);
  const metricsServer = options.metricsPort === undefined ? undefined : await serveWorkerMetrics(metrics, queue, quotas, options.metricsPort, options.metricsHost);

  const exit = new ExitStatus();
  const calls = new CallsInFlight(metrics);
  const signals = new StopSignals(options.concurrency);
  const lockDurationMs = options.lockDurationMs ?? 30_000;
  // A call's reservation lasts as long as its job's lock: a killed worker's lapse with its locks.
  const budget = new QueueBudget(batches, lockDurationMs, (jobIds) => wakeParked(queue, jobIds));
  /** Ends this worker with an exit status (the first reason given wins). */
  const stopWith = (code: number, reason: string): void => {
    if (code === 2 && exit.clean) stopNotices.push(announceFatalStop(batches, reason, log));
    exit.give(code, reason);
    // Not awaited: close() waits for the very job that called this to finish.
    setImmediate(() => void stopper.stop());
  };
  const stopNotices: Promise<void>[] = [];
  const processor = new ImageJobProcessor({ config, log, pipeline, queue, batches, catalogs, quotas, metrics, budget, calls, signals, exit, stopWith, untilDrained: options.untilDrained, onSettled: options.onSettled });
  const workerOptions = { settings, concurrency: options.concurrency, lockDurationMs, stalledIntervalMs: options.stalledIntervalMs, log };
  const worker = createImagesWorker(config, connection, workerOptions, (job, token) => processor.process(job, token));
  const catalogWorker = options.catalog === false ? undefined : startCatalogWorker(settings, connection, queue, batches, config, pipeline.prices, log);
  const timeoutMs = options.shutdownTimeoutMs ?? 120_000;
  const stopper = new WorkerStop({ worker, connection, log, timeoutMs, signals, calls, exit, catalogWorker, metricsServer, queue, pipeline, quotas, budget, webhooks, beforeWebhooksClose: () => Promise.allSettled(stopNotices) });
  const stop = (force = false): Promise<void> => stopper.stop(force);
  const drainWatch = options.untilDrained
    ? watchDrained(
        queue,
        batches,
        () => void stop(),
        (reason) => {
          exit.give(2, `the images queue was paused${reason ? ` (${reason})` : ''}: nothing can drain it; fix the cause, then \`tokenhot-batch resume\``);
          void stop();
        },
      )
    : undefined;
  const done = runUntilStopped(worker, stopper, exit, log, drainWatch);

  log.info({ redis: describeRedis(settings.redisUrl), concurrency: options.concurrency }, 'worker started');
  if (metricsServer) log.info({ port: metricsServer.port }, `metrics on http://${options.metricsHost ?? '127.0.0.1'}:${metricsServer.port}/metrics`);
  return { done, stop, pipeline, remaining: () => remainingJobs(queue), ...(metricsServer ? { metricsPort: metricsServer.port } : {}) };
}

/** The worker's Redis connection, pipeline, images queue, webhooks and batch state (which sends the batches' webhooks). */
async function openQueue(config: Config, options: WorkerOptions): Promise<{ connection: Redis; pipeline: Pipeline; queue: Queue<ImageJobData>; batches: BatchState; webhooks: WorkerWebhooks }> {
  const connection = await connectRedis(options.settings.redisUrl, 'worker');
  const warning = await evictionWarning(connection);
  if (warning) options.log.warn(warning);
  const pipeline = await createPipeline(config);
  const queue = imagesQueue(options.settings, connection);
  // The worker's own listener reports a lost Redis; without one BullMQ prints each error raw.
  queue.on('error', () => undefined);
  const webhooks = openWorkerWebhooks(connection, options.settings.prefix, config, options.log);
  const batches = new BatchState(connection, options.settings.prefix, webhooks.outbox);
  return { connection, pipeline, queue, batches, webhooks };
}

/**
 * The spools of this machine holding ledger segments of a process that is gone (a killed worker's
 * lines for a job's own bucket): their outputs are opened, which ships them now rather than at
 * that job's next row. The worker's own output shipped its spool as it opened. Resolves once
 * each opening has started.
 */
async function shipLeftoverSpools(pipeline: Pipeline, log: Logger): Promise<void> {
  // Not waited for: the opening is the pipeline's, and closing the pipeline waits for it.
  for (const output of await bucketsWithLeftovers().catch(() => [] as string[])) {
    void pipeline.forOutput(output).then(
      () => log.info({ output }, 'shipping the ledger segments a stopped process left in this machine\'s spool'),
      (error: unknown) => log.warn({ output, err: (error as Error).message }, 'ledger segments a stopped process left in this machine\'s spool not shipped yet'),
    );
  }
}

/** `run.stopped` to the batches a fatal error leaves unsettled; a failure is logged, the stop goes on. */
async function announceFatalStop(batches: BatchState, reason: string, log: Logger): Promise<void> {
  try {
    const sent = await announceStopped(batches, reason);
    if (sent > 0) log.info({ batches: sent }, 'run.stopped webhook queued');
  } catch (error) {
    log.warn({ err: (error as Error).message }, 'run.stopped webhook not queued');
  }
}

/** `refusePausedQueue`, closing what was opened when it refuses. */
async function refusePausedQueueOrClose(queue: Queue<ImageJobData>, batches: BatchState, pipeline: Pipeline, connection: Redis): Promise<void> {
  try {
    await refusePausedQueue(queue, batches);
  } catch (error) {
    await queue.close();
    await pipeline.close();
    connection.disconnect();
    throw error;
  }
}

/** Prometheus metrics, with the queue's depth and the learned paces read at each scrape. */
function serveWorkerMetrics(metrics: WorkerMetrics, queue: Queue<ImageJobData>, quotas: ScopedQuotas, port: number, host = '127.0.0.1'): ReturnType<typeof serveMetrics> {
  return serveMetrics(metrics, port, host, async () => {
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized');
    for (const [state, count] of Object.entries(counts)) metrics.queueDepth.set({ state }, count);
    for (const [scope, rate] of await quotas.rates()) metrics.pace.set({ scope: scope || 'all' }, rate ?? 0);
  });
}

/** Takes jobs until the worker stops (or has drained the queue), then says how it ended. */
async function runUntilStopped(worker: Worker<ImageJobData>, stopper: WorkerStop, exit: ExitStatus, log: Logger, drainWatch: { stop(): void } | undefined): Promise<WorkerExit> {
  // `run()` may never return once its Redis is gone: a finished stop ends the worker as well.
  await Promise.race([worker.run().catch((error: unknown) => log.warn({ err: (error as Error).message }, 'worker loop ended')), stopper.stopped]);
  drainWatch?.stop();
  await stopper.stop();
  return exit.current;
}

/** Jobs left in the images queue (waiting, delayed, active). */
async function remainingJobs(queue: Queue<ImageJobData>): Promise<number> {
  const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}
