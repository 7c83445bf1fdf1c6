/** The BullMQ worker of the images queue: its options and its own listeners. */
import { hostname } from 'node:os';
import { UnrecoverableError, Worker, type Processor } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/log.js';
import { backoffDelay } from '../run/retry-policy.js';
import { IMAGES_QUEUE, type ImageJobData, type QueueSettings } from './queue.js';

/**
 * A backstop on starts: a job goes back to waiting on each 429 (capped by the attempt policy)
 * and each time its start slot is too far off; neither uses an attempt.
 */
const MAX_STARTED_ATTEMPTS = 500;

export interface ImagesWorkerOptions {
  settings: QueueSettings;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number | undefined;
  log: Logger;
}

/** Made without running: `run()` starts taking jobs. */
export function createImagesWorker(config: Config, connection: Redis, options: ImagesWorkerOptions, processor: Processor<ImageJobData>): Worker<ImageJobData> {
  const { log } = options;
  const worker = new Worker<ImageJobData>(IMAGES_QUEUE, processor, {
    connection,
    prefix: options.settings.prefix,
    concurrency: options.concurrency,
    name: `${hostname()}:${process.pid}`,
    maxStartedAttempts: MAX_STARTED_ATTEMPTS,
    lockDuration: options.lockDurationMs,
    stalledInterval: options.stalledIntervalMs ?? 15_000,
    // After a Redis blip the worker's loop waits this long before it asks for jobs again (BullMQ's
    // default is 15 s: a worker idle for up to half a minute after Redis came back).
    runRetryDelay: 1_000,
    maxStalledCount: 3,
    // Calls take up to minutes; a rate-limited worker re-checks at least this often.
    maximumRateLimitDelay: 30_000,
    settings: { backoffStrategy: (attemptsMade: number) => backoffDelay(attemptsMade, config.retry) },
    autorun: false,
  });
  worker.on('error', (error) => log.warn({ err: error.message }, 'worker error (Redis connection?)'));
  worker.on('failed', (job, error) => {
    // Billed failures were logged with their tokens; this covers the ones given up on.
    if (job && error instanceof UnrecoverableError && /gave up after/.test(error.message)) {
      log.warn({ batch: job.data.row.batch, row: job.data.row.id, jobId: job.id }, `row failed: ${error.message}`);
    }
  });
  return worker;
}
