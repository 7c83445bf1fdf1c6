/**
 * Queue mode: events wait in the BullMQ queue `webhooks` (under the queue prefix, beside
 * `images`), one job per event and URL, so that a restart or a dead worker loses no delivery.
 * A failed attempt is thrown, and BullMQ tries the job again on the retry schedule (its
 * `attempts` and our backoff strategy) for 24 h; every `work` with TOKENHOT_WEBHOOK_SECRET runs a
 * small worker on it beside the images worker.
 */
import { Queue, Worker, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/log.js';
import { withoutKey, type WebhookEvent, type WebhookOutbox } from './events.js';
import { DeliveryLog, shownUrl, WebhookSender } from './deliver.js';
import { retryDelayMs, retrySchedule, type RetrySchedule } from './retry-schedule.js';
import { localDirOf } from '../output/location.js';

export const WEBHOOKS_QUEUE = 'webhooks';
/** Name of the backoff strategy the webhooks worker registers. */
const WEBHOOK_BACKOFF = 'tokenhot-webhook';

/** One event for one URL; the event is already without the key (`withoutKey`). */
export interface WebhookJobData {
  url: string;
  event: WebhookEvent;
}

export function webhookJobOptions(schedule: RetrySchedule): JobsOptions {
  return {
    attempts: schedule.attempts,
    backoff: { type: WEBHOOK_BACKOFF },
    removeOnComplete: { count: 1_000, age: 7 * 24 * 3600 },
    removeOnFail: { count: 10_000, age: 30 * 24 * 3600 },
  };
}

/** Events into the `webhooks` queue. */
export class QueuedOutbox implements WebhookOutbox {
  readonly queue: Queue<WebhookJobData>;
  private readonly adding = new Set<Promise<unknown>>();

  constructor(
    connection: Redis,
    prefix: string,
    private readonly schedule: RetrySchedule,
    private readonly apiKey: string | undefined,
    /** Called on each event handed over (a worker that cannot deliver says so). */
    private readonly onSend?: () => void,
  ) {
    this.queue = new Queue<WebhookJobData>(WEBHOOKS_QUEUE, { connection, prefix });
    // The worker's own listeners report a lost Redis.
    this.queue.on('error', () => undefined);
  }

  async send(urls: readonly string[], event: WebhookEvent): Promise<void> {
    if (urls.length === 0) return;
    this.onSend?.();
    const clean = withoutKey(event, this.apiKey);
    const options = webhookJobOptions(this.schedule);
    // Job ids from the event: an event handed over twice (a retried step) is added once.
    const adding = this.queue.addBulk(urls.map((url, index) => ({ name: clean.type, data: { url, event: clean }, opts: { ...options, jobId: `${clean.id}.${index}` } })));
    this.adding.add(adding);
    try {
      await adding;
    } finally {
      this.adding.delete(adding);
    }
  }

  /** Resolves once every event handed over so far is in Redis (or failed to get there). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.adding]);
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}

export interface WebhookWorker {
  /** Waits up to `graceMs` for the events waiting now to be attempted, then stops; retries stay queued. */
  close(graceMs?: number): Promise<void>;
}

export interface WebhookWorkerParts {
  connection: Redis;
  prefix: string;
  outbox: QueuedOutbox;
  sender: WebhookSender;
  deliveries: DeliveryLog;
  schedule: RetrySchedule;
  log: Logger;
}

/** The worker of the `webhooks` queue: one attempt per job run, logged, a failure thrown for BullMQ to retry. */
export function startWebhookWorker(parts: WebhookWorkerParts): WebhookWorker {
  const { sender, deliveries, log } = parts;
  const worker = new Worker<WebhookJobData>(
    WEBHOOKS_QUEUE,
    async (job) => {
      const { url, event } = job.data;
      const attempt = job.attemptsMade + 1;
      const last = attempt >= (job.opts.attempts ?? 1);
      const result = await sender.attempt(url, event);
      await deliveries.append(event, url, attempt, result, result.delivered ? 'delivered' : last ? 'gave up' : 'retry');
      if (result.delivered) return;
      if (last) log.warn({ event: event.id, type: event.type, url: shownUrl(url), attempts: attempt }, `webhook not delivered, given up: ${result.error}`);
      throw new Error(result.error);
    },
    {
      connection: parts.connection,
      prefix: parts.prefix,
      concurrency: 4,
      settings: { backoffStrategy: (failures: number) => retryDelayMs(failures, parts.schedule.baseMs) },
    },
  );
  worker.on('error', (error) => log.warn({ err: error.message }, 'webhooks worker error (Redis connection?)'));
  return {
    close: async (graceMs = 10_000) => {
      await parts.outbox.settled();
      await waitForNoneWaiting(parts.outbox.queue, graceMs);
      await worker.close();
      await sender.close();
    },
  };
}

/** Until nothing is waiting or active in the queue (delayed retries stay for later), at most `ms`. */
async function waitForNoneWaiting(queue: Queue<WebhookJobData>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    // A Redis that does not answer would hold the count for ever: it counts as nothing waiting.
    const counts = await Promise.race([queue.getJobCounts('waiting', 'active', 'prioritized').catch(() => undefined), sleep(deadline - Date.now())]);
    if (!counts || Object.values(counts).every((count) => count === 0)) return;
    await sleep(100);
  }
}

/** Unref'd: a wait cut short by the race must not keep the process alive. */
function sleep(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), Math.max(0, ms)).unref());
}

export interface WorkerWebhooks {
  outbox: QueuedOutbox;
  /** Absent without TOKENHOT_WEBHOOK_SECRET: events then wait in the queue for a worker that has it. */
  worker: WebhookWorker | undefined;
}

/** A worker process's webhooks: its outbox, and the worker of the queue when it can sign. */
export function openWorkerWebhooks(connection: Redis, prefix: string, config: Pick<Config, 'apiKey' | 'outDir' | 'webhookSecret'>, log: Logger): WorkerWebhooks {
  const schedule = retrySchedule();
  if (!config.webhookSecret) {
    let warned = false;
    const warn = (): void => {
      if (!warned) log.warn('this worker has no TOKENHOT_WEBHOOK_SECRET: its webhook events wait in the webhooks queue for a worker that has it');
      warned = true;
    };
    return { outbox: new QueuedOutbox(connection, prefix, schedule, config.apiKey, warn), worker: undefined };
  }
  const outbox = new QueuedOutbox(connection, prefix, schedule, config.apiKey);
  const sender = new WebhookSender({ secret: config.webhookSecret, apiKey: config.apiKey });
  const worker = startWebhookWorker({ connection, prefix, outbox, sender, deliveries: new DeliveryLog(localDirOf(config.outDir)), schedule, log });
  return { outbox, worker };
}
