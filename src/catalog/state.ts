/**
 * What Redis remembers of each catalog job: the content hash of each row's last finished image,
 * the hashes queued and not yet finished, and an account of each firing.
 *
 * Keys under the queue prefix:
 *   <prefix>:tokenhot:catalogs                  set of catalog names with runs
 *   <prefix>:tokenhot:catalog:<name>:done       hash row id → content hash of its last finished image
 *   <prefix>:tokenhot:catalog:<name>:pending    hash row id → content hash queued, not finished yet
 *   <prefix>:tokenhot:catalog:<name>:runs       list of run records (JSON), newest first, 100 kept
 *   <prefix>:tokenhot:catalog:<name>:lock       held while a firing runs
 *   <prefix>:tokenhot:catalog:<name>:feed-columns  JSON header of the feed at the last firing
 */
import type { Redis } from 'ioredis';

export interface CatalogRun {
  name: string;
  batch: string;
  mode: 'incremental' | 'full';
  firedAt: string;
  finishedAt: string;
  status: 'ok' | 'failed' | 'skipped';
  reason?: string;
  /** Rows put on the queue. */
  enqueued: number;
  /** Rows whose last finished image has the same content hash (incremental). */
  unchanged: number;
  /** Rows already queued with the same content by an earlier firing, not finished yet. */
  stillQueued: number;
  /** Rows an earlier firing had parked over budget, queued again by this one (absent in runs of earlier versions). */
  takenOver?: number;
  /** Unchanged rows queued again because review rejected their image (`regenerate:`). */
  regenerated?: number;
  rejected: number;
  /** The first few rejected rows, `file:line: column: reason`. */
  rejectedRows: string[];
}

const RUNS_KEPT = 100;

export class CatalogState {
  constructor(
    private readonly client: Redis,
    private readonly prefix: string,
  ) {}

  private key(name: string, part: string): string {
    return `${this.prefix}:tokenhot:catalog:${name}:${part}`;
  }

  /** Last finished and queued hashes of the given rows, in order. */
  async known(name: string, rowIds: string[]): Promise<{ done: (string | null)[]; pending: (string | null)[] }> {
    if (rowIds.length === 0) return { done: [], pending: [] };
    const replies = await this.client.multi().hmget(this.key(name, 'done'), ...rowIds).hmget(this.key(name, 'pending'), ...rowIds).exec();
    return { done: replies?.[0]?.[1] as (string | null)[], pending: replies?.[1]?.[1] as (string | null)[] };
  }

  async markPending(name: string, hashes: Map<string, string>): Promise<void> {
    if (hashes.size > 0) await this.client.hset(this.key(name, 'pending'), Object.fromEntries(hashes));
  }

  /** The row's image with this content is finished: later firings skip it while it stays the same. */
  async markFinished(name: string, rowId: string, hash: string): Promise<void> {
    await this.client.multi().hset(this.key(name, 'done'), rowId, hash).hdel(this.key(name, 'pending'), rowId).exec();
  }

  /** The row failed for good: nothing of it is queued any more, so the next firing tries again. */
  async clearPending(name: string, rowId: string): Promise<void> {
    await this.client.hdel(this.key(name, 'pending'), rowId);
  }

  /** The header of the job's feed at its last firing (a firing compares the next one with it). */
  async feedColumns(name: string): Promise<string[] | undefined> {
    const value = await this.client.get(this.key(name, 'feed-columns'));
    return value ? (JSON.parse(value) as string[]) : undefined;
  }

  async setFeedColumns(name: string, columns: string[]): Promise<void> {
    await this.client.set(this.key(name, 'feed-columns'), JSON.stringify(columns));
  }

  /** `schedule sync`: the job's feed header as it is now is the one to compare with. */
  async forgetFeedColumns(name: string): Promise<void> {
    await this.client.del(this.key(name, 'feed-columns'));
  }

  async recordRun(run: CatalogRun): Promise<void> {
    await this.client
      .multi()
      .sadd(`${this.prefix}:tokenhot:catalogs`, run.name)
      .lpush(this.key(run.name, 'runs'), JSON.stringify(run))
      .ltrim(this.key(run.name, 'runs'), 0, RUNS_KEPT - 1)
      .exec();
  }

  async runs(name: string, limit = 10): Promise<CatalogRun[]> {
    const lines = await this.client.lrange(this.key(name, 'runs'), 0, limit - 1);
    return lines.map((line) => JSON.parse(line) as CatalogRun);
  }

  /** The batches of the catalog's recorded firings, newest first, each once. */
  async batches(name: string): Promise<string[]> {
    return [...new Set((await this.runs(name, RUNS_KEPT)).map((run) => run.batch))];
  }

  async names(): Promise<string[]> {
    return (await this.client.smembers(`${this.prefix}:tokenhot:catalogs`)).sort();
  }

  /** One firing of a catalog at a time, across all workers. */
  async lock(name: string, token: string, ms: number): Promise<boolean> {
    return (await this.client.set(this.key(name, 'lock'), token, 'PX', ms, 'NX')) === 'OK';
  }

  async unlock(name: string, token: string): Promise<void> {
    // Only the holder removes its lock (a slow firing whose lock expired must not free another's).
    await this.client.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0", 1, this.key(name, 'lock'), token);
  }
}
