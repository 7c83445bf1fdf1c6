/**
 * BullMQ on Redis: queue names, connections, job ids and job options, in one place for the
 * producer, the workers, `status` and the schedulers.
 */
import { Queue, type JobsOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { UsageError } from '../core/errors.js';
import type { RetryPolicy } from '../run/retry-policy.js';
import type { BatchRow } from '../core/types.js';

export const IMAGES_QUEUE = 'images';
export const CATALOG_QUEUE = 'catalog';
/** Name of the backoff strategy the workers register (see `backoffDelay`). */
export const BACKOFF_TYPE = 'tokenhot';
export const DEFAULT_PREFIX = 'tokenhot';

export interface QueueSettings {
  redisUrl: string;
  /**
   * Prefix of every key, BullMQ's and ours. With Redis Cluster use a hash tag such as
   * `{tokenhot}` so all keys of the queues land in one slot, as BullMQ's scripts need.
   */
  prefix: string;
}

/** What a job of the images queue carries: the row, never image bytes, never the key. */
export interface ImageJobData {
  row: BatchRow;
  /** Set when a catalog job queued the row (its content hash is `row.contentHash`). */
  catalog?: { name: string };
  /**
   * Where the row's images, sidecar and ledger line go when its job names an output (`out:`): an
   * absolute folder or `s3://bucket/prefix`. Unset: the worker's own `TOKENHOT_OUT_DIR`.
   */
  out?: string;
  /** 429s this row has waited out so far (the attempt policy caps them). */
  rateLimitWaits?: number;
}

/** Job ids come from batch and row id, so adding the same row twice adds nothing. */
export function jobIdFor(batch: string, rowId: string): string {
  // BullMQ refuses ':' in custom ids; batch parts and row ids never hold one.
  return `${batch}/${rowId}`;
}

/**
 * A catalog firing's job for a row: a job of its own for each firing and content, so a row
 * queued again (new content, or a `full` firing) never meets a finished job of the same id,
 * which BullMQ would keep and silently not add again.
 */
export function catalogJobIdFor(batch: string, rowId: string, contentHash: string, firing: string): string {
  return `${batch}/${rowId}@${contentHash.slice(0, 12)}-${firing}`;
}

/** The Redis URL with any password hidden, for messages. */
export function describeRedis(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the Redis in REDIS_URL';
  }
}

export type RedisRole = 'producer' | 'worker';

/**
 * A producer fails fast on a dead Redis (a clear message beats a hang); a worker reconnects for
 * as long as it takes, so workers carry on across a Redis restart.
 */
export function redisOptions(role: RedisRole): RedisOptions {
  return role === 'producer'
    ? { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 5_000, retryStrategy: (times) => (times > 2 ? null : 200), lazyConnect: true }
    : { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy: (times) => Math.min(times * 500, 5_000), lazyConnect: true };
}

export async function connectRedis(url: string, role: RedisRole): Promise<Redis> {
  const client = new Redis(url, redisOptions(role));
  // Without a listener ioredis prints every reconnect error; the callers report what matters.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    client.disconnect();
    throw new UsageError(`cannot reach Redis at ${describeRedis(url)}: ${(error as Error).message}`);
  }
  return client;
}

/** BullMQ needs `noeviction`: an evicted job key is a lost row. Managed Redis may hide CONFIG. */
export async function evictionWarning(client: Redis): Promise<string | undefined> {
  try {
    const [, policy] = (await client.config('GET', 'maxmemory-policy')) as [string, string];
    if (policy && policy !== 'noeviction') {
      return `Redis maxmemory-policy is "${policy}", not "noeviction": under memory pressure Redis may evict queued jobs; set maxmemory-policy noeviction`;
    }
  } catch {
    // CONFIG may be disabled (managed Redis); nothing to check then.
  }
  return undefined;
}

export function imageJobOptions(policy: RetryPolicy): JobsOptions {
  return {
    attempts: policy.attempts,
    backoff: { type: BACKOFF_TYPE },
    // The ledger and the outputs are the record; Redis keeps a bounded tail for inspection.
    removeOnComplete: { count: 1_000, age: 24 * 3600 },
    removeOnFail: { count: 100_000, age: 30 * 24 * 3600 },
  };
}

export function imagesQueue(settings: QueueSettings, connection: Redis): Queue<ImageJobData> {
  return new Queue<ImageJobData>(IMAGES_QUEUE, { connection, prefix: settings.prefix });
}

export function queueSettings(redisUrl: string | undefined, prefix: string | undefined): QueueSettings {
  if (!redisUrl) throw new UsageError('REDIS_URL is not set: the queue commands need Redis (e.g. REDIS_URL=redis://127.0.0.1:6379)');
  const value = prefix ?? process.env.TOKENHOT_QUEUE_PREFIX ?? DEFAULT_PREFIX;
  if (!/^[A-Za-z0-9{}_.-]+$/.test(value)) throw new UsageError(`--prefix "${value}" may hold letters, digits, "{", "}", "_", "." and "-"`);
  return { redisUrl, prefix: value };
}
