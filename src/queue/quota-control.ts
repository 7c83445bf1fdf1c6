/**
 * A provider's quota, shared by every worker on every machine through Redis. Each scope (see
 * run/pacing.ts `quotaScope`: the provider) has a pace of its own.
 *
 * - Pacing (run/pacing.ts): one pace for all workers. Before each call a worker reserves a start
 *   slot: slots are handed out 1/pace apart on Redis's clock (so machines with skewed clocks
 *   still space their calls evenly), and the worker sleeps until its slot. Even spacing matters:
 *   BullMQ's fixed-window limiter starts a whole window's jobs at once, and against a provider's
 *   token bucket those bursts cost 429s.
 * - 429s: `queue.rateLimit(ms)` stops every worker from taking jobs for the delay the provider
 *   asked for, and the slots already handed out become void (an epoch counter), so waiting calls
 *   take new slots after the pause at the lowered pace. BullMQ only honours a manual rate limit
 *   when the queue has a rate limiter configured, so the queue gets one too large to ever bind.
 * - The pace itself changes by optimistic transactions (WATCH) on a connection of our own, so
 *   concurrent workers never lose one another's changes.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../core/log.js';
import { afterRateLimited, afterSuccesses, initialPace, withNamedQuota, type PaceState } from '../run/pacing.js';
import { sleep } from '../run/rate-gate.js';

/** A rate limit that never binds: it only gives manual 429 pauses something to act on. */
const OPEN_LIMIT = { max: 1_000_000_000, duration: 1_000 };
/** How often a worker reports its successes. */
const FLUSH_MS = 250;
/** Calls that would wait longer than this for a slot go back to the queue instead. */
export const LONGEST_SLOT_WAIT_MS = 30_000;

// KEYS[1] pace (rule state: rate), KEYS[2] slots (next, pauseUntil, epoch); ARGV[1] the longest
// wait a caller takes. A slot further out than that is not handed out (so callers that go away
// do not push every later slot out). Returns { ms to wait, epoch }.
const RESERVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(redis.call('HGET', KEYS[1], 'rate') or '')
local nextSlot = tonumber(redis.call('HGET', KEYS[2], 'next') or '0')
local pauseUntil = tonumber(redis.call('HGET', KEYS[2], 'pauseUntil') or '0')
local epoch = redis.call('HGET', KEYS[2], 'epoch') or '0'
local slot = math.max(now, pauseUntil)
if rate and rate > 0 then
  slot = math.max(slot, nextSlot)
  if slot - now <= tonumber(ARGV[1]) then
    redis.call('HSET', KEYS[2], 'next', tostring(slot + 1000 / rate))
  end
end
return { tostring(slot - now), epoch }
`;

// KEYS[1] slots, KEYS[2] this second's starts (n, and the first start's time); ARGV[1] the epoch
// the slot was reserved in. 1: go (and the start is counted at once, for every worker to see);
// 0: reserve again.
const CONFIRM = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = redis.call('HGET', KEYS[1], 'epoch') or '0'
local pauseUntil = tonumber(redis.call('HGET', KEYS[1], 'pauseUntil') or '0')
if epoch == ARGV[1] and now >= pauseUntil then
  redis.call('HINCRBY', KEYS[2], 'n', 1)
  redis.call('HSETNX', KEYS[2], 'first', tostring(now))
  redis.call('EXPIRE', KEYS[2], 10)
  return 1
end
return 0
`;

// KEYS[1] slots; ARGV[1] pause in ms. Voids every slot handed out so far.
const PAUSE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pauseUntil = math.max(tonumber(redis.call('HGET', KEYS[1], 'pauseUntil') or '0'), now + tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 'pauseUntil', tostring(pauseUntil), 'next', tostring(pauseUntil))
redis.call('HINCRBY', KEYS[1], 'epoch', 1)
return pauseUntil - now
`;

export interface QuotaSettings {
  /** A known quota in requests per minute: the pace starts there and never exceeds it. */
  rpm?: number;
  globalConcurrency?: number;
}

export class QuotaControl {
  private successes = 0;
  private timer?: NodeJS.Timeout;
  private flushing = Promise.resolve();
  private updating: Promise<void> = Promise.resolve();
  /**
   * A connection of its own: WATCH belongs to a connection, and on one shared with BullMQ a
   * watched key could make BullMQ's own transactions fail (or theirs clear our WATCH).
   */
  private readonly client: Redis;

  constructor(
    private readonly queue: Queue,
    connection: Redis,
    private readonly prefix: string,
    private readonly log: Logger,
    /** Calls that would wait longer than this for a slot go back to the queue instead. */
    private readonly longestSlotWaitMs = LONGEST_SLOT_WAIT_MS,
    /** Whose pace this is (see quotaScope); empty for one pace of everything. */
    private readonly scope = '',
  ) {
    this.client = connection.duplicate();
    this.client.on('error', () => undefined);
  }

  private get paceKey(): string {
    return `${this.prefix}:tokenhot:pace${this.scope ? `:${this.scope}` : ''}`;
  }

  private get slotsKey(): string {
    return `${this.paceKey}:slots`;
  }

  /** Calls started (a hash: n, first) or refused with 429 (a count) in one second, all workers. */
  private startsKey(second: number, kind: 'started' | 'refused' = 'started'): string {
    return `${this.paceKey}:${kind}:${second}`;
  }

  async init(settings: QuotaSettings): Promise<void> {
    await setUpQueue(this.queue, settings, this.log);
    const state = await this.update((learned) => initialPace(settings.rpm, learned));
    const whose = this.scope ? { scope: this.scope } : {};
    if (settings.rpm) this.log.info({ rpm: settings.rpm, ...whose }, 'quota set for all workers');
    else if (state.rate !== undefined) this.log.info({ rate: Number(state.rate.toFixed(2)), ...whose }, 'pace learned earlier, in calls per second');
    this.timer = setInterval(() => void this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  /**
   * Waits for this call's start slot. Returns false when the wait would be long (a long 429
   * pause): the job should go back to the queue instead of holding a worker.
   */
  async waitForSlot(signal?: AbortSignal): Promise<boolean> {
    for (;;) {
      const [wait, epoch] = (await this.client.eval(RESERVE, 2, this.paceKey, this.slotsKey, String(this.longestSlotWaitMs))) as [string, string];
      const ms = Number(wait);
      if (ms > this.longestSlotWaitMs) {
        // More calls wait than the pace lets start soon: no worker takes a job until the
        // backlog has come down, instead of jobs bouncing back and forth.
        const hold = Math.ceil(ms - this.longestSlotWaitMs / 2);
        if (hold > (await this.queue.getRateLimitTtl(Number.MAX_SAFE_INTEGER))) await this.queue.rateLimit(hold);
        return false;
      }
      if (ms > 0) await sleep(ms, signal);
      if ((await this.client.eval(CONFIRM, 2, this.slotsKey, this.startsKey(Math.floor(Date.now() / 1000)), epoch)) === 1) return true;
    }
  }

  /** True while a 429 pause of any worker is in force (no call may start). */
  async isPaused(): Promise<boolean> {
    const pauseUntil = Number((await this.client.hget(this.slotsKey, 'pauseUntil')) ?? 0);
    const [seconds, micros] = await this.client.time();
    return pauseUntil > Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  /**
   * After a 429: pause everyone for at least `ms` (never shortening a longer pause) and slow the
   * pace, never above a quota the provider named (`namedQuota`, calls per second).
   */
  async rateLimited(ms: number, namedQuota?: number): Promise<void> {
    const pauseMs = Number(await this.client.eval(PAUSE, 1, this.slotsKey, String(Math.ceil(ms))));
    await this.queue.rateLimit(pauseMs);
    const second = Math.floor(Date.now() / 1000);
    await this.client.multi().incr(this.startsKey(second, 'refused')).expire(this.startsKey(second, 'refused'), 10).exec();
    const observed = await this.observedRate();
    const before = (await this.read()).rate;
    const after = await this.update((state) => withNamedQuota(afterRateLimited(state, Date.now(), observed), namedQuota));
    if (after.rate !== before) this.log.info({ rate: Number(after.rate!.toFixed(2)), ...(this.scope ? { scope: this.scope } : {}) }, 'quota reached: pace lowered (calls per second, all workers)');
  }

  /** The shared pace in calls per second, or undefined while none is known. */
  async currentRate(): Promise<number | undefined> {
    return (await this.read()).rate;
  }

  /** A call went through. */
  succeeded(): void {
    this.successes += 1;
  }

  /**
   * Calls per second that got past the quota lately, all workers together: starts minus 429s
   * over the last three seconds or so, divided by the time since the first of those starts (on
   * Redis's clock). Every start is counted the moment it is confirmed: counted later, the 429s of
   * a first burst would be set against too few starts, and the pace would start far too low.
   */
  private async observedRate(): Promise<number> {
    const second = Math.floor(Date.now() / 1000);
    const seconds = [second, second - 1, second - 2, second - 3];
    const pipeline = this.client.pipeline().time();
    for (const s of seconds) pipeline.hmget(this.startsKey(s), 'n', 'first');
    pipeline.mget(...seconds.map((s) => this.startsKey(s, 'refused')));
    const results = (await pipeline.exec()) ?? [];
    const [timeError, time] = results[0] ?? [];
    if (timeError || !Array.isArray(time)) return 0;
    const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
    let total = 0;
    let first = Number.POSITIVE_INFINITY;
    for (const [error, value] of results.slice(1, 1 + seconds.length)) {
      if (error || !Array.isArray(value)) continue;
      const n = Number(value[0] ?? 0);
      if (n > 0) {
        total += n;
        first = Math.min(first, Number(value[1] ?? now));
      }
    }
    if (total === 0) return 0;
    const refusedCounts = results[1 + seconds.length]?.[1];
    const refused = Array.isArray(refusedCounts) ? refusedCounts.reduce((sum: number, count) => sum + Number(count ?? 0), 0) : 0;
    // A first burst answered at once would make a tiny span: no less than a quarter second.
    const span = Math.max(0.25, (now - first) / 1000);
    return Math.max(0, total - refused) / span;
  }

  private flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      const successes = this.successes;
      if (successes === 0) return;
      this.successes = 0;
      try {
        await this.update((state) => afterSuccesses(state, successes));
      } catch (error) {
        this.log.warn({ err: (error as Error).message }, 'could not record pacing (Redis away?)');
      }
    });
    return this.flushing;
  }

  private async read(): Promise<PaceState> {
    return parseState(await this.client.hgetall(this.paceKey));
  }

  /**
   * Read, change and write the shared pace (optimistic transaction). One at a time in this
   * process: WATCH belongs to the connection, and two transactions of one connection interleaved
   * would clear each other's WATCH.
   */
  private update(change: (state: PaceState) => PaceState): Promise<PaceState> {
    const result = this.updating.then(() => this.updateNow(change));
    this.updating = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  private async updateNow(change: (state: PaceState) => PaceState): Promise<PaceState> {
    for (let tries = 0; tries < 10; tries++) {
      await this.client.watch(this.paceKey);
      const state = parseState(await this.client.hgetall(this.paceKey));
      const next = change(state);
      const fields = Object.entries(next).filter(([, value]) => value !== undefined);
      const transaction = this.client.multi().del(this.paceKey);
      if (fields.length > 0) transaction.hset(this.paceKey, Object.fromEntries(fields.map(([key, value]) => [key, String(value)])));
      if ((await transaction.exec()) !== null) return next;
    }
    return this.read();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush().catch(() => undefined);
    this.client.disconnect();
  }
}

/**
 * What the queue itself needs, once per worker: a rate limiter that never binds (so manual 429
 * pauses act), and the cap on calls in flight across workers when one is asked for.
 */
async function setUpQueue(queue: Queue, settings: QuotaSettings, log: Logger): Promise<void> {
  if (!(await queue.getGlobalRateLimit())) await queue.setGlobalRateLimit(OPEN_LIMIT.max, OPEN_LIMIT.duration);
  if (settings.globalConcurrency && (await queue.getGlobalConcurrency()) !== settings.globalConcurrency) {
    await queue.setGlobalConcurrency(settings.globalConcurrency);
    log.info({ globalConcurrency: settings.globalConcurrency }, 'cap on calls in flight set for all workers');
  }
}

/**
 * One QuotaControl per scope, made and set up on its first row. A 429 of one scope pauses every
 * worker's fetching for its delay (BullMQ's limiter is the queue's), but the pace each scope
 * learns is its own.
 */
export class ScopedQuotas {
  private readonly byScope = new Map<string, Promise<QuotaControl>>();

  constructor(
    private readonly make: (scope: string) => QuotaControl,
    private readonly settings: QuotaSettings,
  ) {}

  for(scope: string): Promise<QuotaControl> {
    let quota = this.byScope.get(scope);
    if (!quota) {
      const control = this.make(scope);
      quota = control.init(this.settings).then(() => control);
      // A failed set-up (Redis away) is tried again by the next row, not kept.
      quota.catch(() => this.byScope.delete(scope));
      this.byScope.set(scope, quota);
    }
    return quota;
  }

  /** The paces learned so far, by scope (calls per second). */
  async rates(): Promise<Map<string, number | undefined>> {
    const rates = new Map<string, number | undefined>();
    for (const [scope, quota] of this.byScope) rates.set(scope, await (await quota).currentRate());
    return rates;
  }

  async close(): Promise<void> {
    await Promise.all([...this.byScope.values()].map((quota) => quota.then((control) => control.close(), () => undefined)));
  }
}

function parseState(hash: Record<string, string>): PaceState {
  return {
    ...(hash.rate ? { rate: Number(hash.rate) } : {}),
    ...(hash.ceiling ? { ceiling: Number(hash.ceiling) } : {}),
    ...(hash.decreasedAt ? { decreasedAt: Number(hash.decreasedAt) } : {}),
  };
}
