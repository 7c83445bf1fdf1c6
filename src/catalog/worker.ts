/**
 * The catalog worker: runs each firing of a catalog job scheduler (see firing.ts). Started
 * by `work` beside the images worker; one firing at a time per process.
 */
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { BatchState } from '../queue/batch-state.js';
import { CatalogState } from './state.js';
import { FiringError, runFiring } from './firing.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { PriceTable } from '../cost/pricing.js';
import { CATALOG_QUEUE, type ImageJobData, type QueueSettings } from '../queue/queue.js';
import type { FiringJobData } from './schedule.js';

export interface CatalogWorker {
  close(): Promise<void>;
}

/** When a scheduled firing was due (a late worker runs it late, under the name of its due time). */
export function dueTime(job: Job<FiringJobData>): Date {
  return new Date(job.timestamp + (job.opts.delay ?? 0));
}

export function startCatalogWorker(
  settings: QueueSettings,
  connection: Redis,
  images: Queue<ImageJobData>,
  batches: BatchState,
  config: Config,
  prices: PriceTable,
  log: Logger,
): CatalogWorker {
  const catalogs = new CatalogState(connection, settings.prefix);
  const worker = new Worker<FiringJobData>(
    CATALOG_QUEUE,
    async (job) => {
      const { definition } = job.data;
      try {
        const run = await runFiring(definition, dueTime(job), { images, batches, catalogs, retry: config.retry, defaultModel: config.model, prices, outDir: definition.out ?? config.outDir });
        log.info({ catalog: definition.name, batch: run.batch, enqueued: run.enqueued, unchanged: run.unchanged, stillQueued: run.stillQueued, rejected: run.rejected }, `catalog firing ${run.status}`);
        return run;
      } catch (error) {
        if (error instanceof FiringError) {
          log.warn({ catalog: definition.name }, error.message);
          throw new UnrecoverableError(error.message);
        }
        throw error;
      }
    },
    { connection, prefix: settings.prefix, concurrency: 1, lockDuration: 60_000 },
  );
  worker.on('error', (error) => log.warn({ err: error.message }, 'catalog worker error (Redis connection?)'));
  return { close: () => worker.close() };
}
