/**
 * What Redis knows of each batch beyond BullMQ's jobs: which rows were queued, which are done or
 * failed (and why), and the spend so far. Completed jobs are removed from BullMQ to keep Redis
 * small, so these sets are what `status` counts and what `enqueue` checks to add nothing twice.
 *
 * Keys, all under the queue prefix (one hash slot with a `{tag}` prefix):
 *   <prefix>:tokenhot:batches              sorted set of batch names by creation time
 *   <prefix>:tokenhot:batch:<b>:meta       hash: createdAt, csv, ...
 *   <prefix>:tokenhot:batch:<b>:rows       set of row ids ever queued
 *   <prefix>:tokenhot:batch:<b>:done       set of row ids done
 *   <prefix>:tokenhot:batch:<b>:failed     hash row id → reason (removed when the row is done later)
 *   <prefix>:tokenhot:batch:<b>:spend      integer, picodollars
 *   <prefix>:tokenhot:batch:<b>:reserved   sorted set: job id → when its call's reservation lapses (ms, Redis clock)
 *   <prefix>:tokenhot:batch:<b>:reserved-pico  hash: job id → `<picodollars held>:<call id>`
 *   <prefix>:tokenhot:batch:<b>:over       set of job ids parked because the batch reached its budget
 *   <prefix>:tokenhot:batch:<b>:<notice>-notified  `1` once a webhook notice of the batch was sent
 *                                          (finished, over-budget, stopped: notify/batch-notices.ts)
 * and the batch's budget (picodollars) in its meta hash, field `budgetPico`; `handedOver` and
 * `handedOverTo` there count the rows a later catalog firing took over; `notify` holds its
 * webhook URLs (a JSON list).
 */
import type { Redis } from 'ioredis';
import type { WebhookOutbox } from '../notify/events.js';
import type { Notice, NoticeBoard } from '../notify/batch-notices.js';

/**
 * The start of the budget scripts: drops reservations whose worker stopped renewing them (it
 * was killed), by Redis's clock, then reads spend, reservations and budget. Lua numbers are
 * doubles: exact to the picodollar up to $9,000 of spend, near enough beyond for a cap.
 * KEYS: spend, meta, reserved, reserved-pico, over.
 */
const BUDGET_STATE = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, job in ipairs(lapsed) do redis.call('HDEL', KEYS[4], job) end
if #lapsed > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now) end
local reserved = 0
for _, held in ipairs(redis.call('HVALS', KEYS[4])) do reserved = reserved + tonumber(string.match(held, '^%d+')) end
local spend = tonumber(redis.call('GET', KEYS[1]) or '0')
local budget = redis.call('HGET', KEYS[2], 'budgetPico')
`;

/**
 * `fitsBudget` (run/budget.ts), atomically for all workers: the call's estimate is held if it fits,
 * else its job is listed as parked over budget. A job taken again (its worker died, so BullMQ
 * gave its lock away) drops its earlier call's reservation first: that call is presumed gone.
 * ARGV: job id, call id, estimate, ttl ms.
 */
const RESERVE = `${BUDGET_STATE}
local previous = redis.call('HGET', KEYS[4], ARGV[1])
if previous then
  reserved = reserved - tonumber(string.match(previous, '^%d+'))
  redis.call('HDEL', KEYS[4], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
if budget and spend + reserved + tonumber(ARGV[3]) > tonumber(budget) then
  redis.call('SADD', KEYS[5], ARGV[1])
  return {0, string.format('%.0f', spend), string.format('%.0f', reserved), budget}
end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3] .. ':' .. ARGV[2])
redis.call('SREM', KEYS[5], ARGV[1])
return {1}
`;

/**
 * Ends a call's reservation (unless the job was taken again since): with a cost it becomes
 * spend, without one it just goes. Then, when the batch has room for calls of this one's size,
 * takes that many parked job ids (100 at most) for the caller to set going.
 * ARGV: job id, call id, cost or '', estimate.
 */
const SETTLE = `${BUDGET_STATE}
local held = nil
local entry = redis.call('HGET', KEYS[4], ARGV[1])
if entry then
  local amount, call = string.match(entry, '^(%d+):(.*)$')
  if call == ARGV[2] then
    held = tonumber(amount)
    redis.call('HDEL', KEYS[4], ARGV[1])
    redis.call('ZREM', KEYS[3], ARGV[1])
    reserved = reserved - held
  end
end
if ARGV[3] ~= '' then spend = tonumber(redis.call('INCRBY', KEYS[1], ARGV[3])) end
if not budget then return {} end
local room = tonumber(budget) - spend - reserved
local size = held or tonumber(ARGV[4])
local wake = 0
if room >= size then
  if size > 0 then wake = math.min(100, math.floor(room / size)) else wake = 1 end
end
if wake == 0 then return {} end
return redis.call('SPOP', KEYS[5], wake)
`;

/** Pushes back the lapse of the reservations of calls still running. KEYS: reserved. ARGV: ttl ms, job ids... */
const RENEW = `
local clock = redis.call('TIME')
local lapse = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', lapse, ARGV[i]) end
return 0
`;

export interface BatchCounts {
  batch: string;
  /** Rows ever queued. */
  rows: number;
  done: number;
  failed: number;
  /** Rows parked over budget (waiting, not failed). */
  overBudget: number;
  spendPico: bigint;
  budgetPico?: bigint;
  createdAt?: number;
}

/** Why a queued call may not start: where its batch stands against its budget. */
export interface BudgetRefusal {
  spendPico: bigint;
  /** Held by calls in flight. */
  reservedPico: bigint;
  budgetPico: bigint;
}

export interface FailedRowState {
  id: string;
  line?: number;
  reason: string;
}

export class BatchState implements NoticeBoard {
  /** `outbox`: where a worker's webhook events go (notify/); without one, none are sent. */
  constructor(
    private readonly client: Redis,
    private readonly prefix: string,
    readonly outbox?: WebhookOutbox,
  ) {}

  private key(batch: string, part: string): string {
    return `${this.prefix}:tokenhot:batch:${batch}:${part}`;
  }

  private get batchesKey(): string {
    return `${this.prefix}:tokenhot:batches`;
  }

  async register(batch: string, meta: Record<string, string>): Promise<void> {
    await this.client
      .multi()
      .zadd(this.batchesKey, 'NX', Date.now(), batch)
      .hsetnx(this.key(batch, 'meta'), 'createdAt', String(Date.now()))
      .hset(this.key(batch, 'meta'), meta)
      .exec();
  }

  async meta(batch: string): Promise<Record<string, string>> {
    return this.client.hgetall(this.key(batch, 'meta'));
  }

  /** The output the batch was given (`out:`, `enqueue --out`); undefined for the workers' own. */
  async output(batch: string): Promise<string | undefined> {
    return (await this.client.hget(this.key(batch, 'meta'), 'out')) ?? undefined;
  }

  async setMeta(batch: string, field: string, value: string): Promise<void> {
    await this.client.hset(this.key(batch, 'meta'), field, value);
  }

  /** The ids among `rowIds` that were never queued in this batch. */
  async notYetQueued(batch: string, rowIds: string[]): Promise<string[]> {
    if (rowIds.length === 0) return [];
    const member = await this.client.smismember(this.key(batch, 'rows'), ...rowIds);
    return rowIds.filter((_, index) => member[index] === 0);
  }

  /**
   * Called after the jobs were added, so a crash in between only means they are added again (a no-op).
   * A batch given rows again finishes again: its `batch.finished` may be sent again.
   */
  async markQueued(batch: string, rowIds: string[]): Promise<void> {
    if (rowIds.length > 0) await this.client.multi().sadd(this.key(batch, 'rows'), ...rowIds).del(this.noticeKey(batch, 'finished')).exec();
  }

  /** Rows queued again with new content: no longer done or failed until their new job ends. */
  async markRequeued(batch: string, rowIds: string[]): Promise<void> {
    if (rowIds.length === 0) return;
    await this.client
      .multi()
      .sadd(this.key(batch, 'rows'), ...rowIds)
      .srem(this.key(batch, 'done'), ...rowIds)
      .hdel(this.key(batch, 'failed'), ...rowIds)
      .del(this.noticeKey(batch, 'finished'))
      .exec();
  }

  /** The batch's webhook URLs (`enqueue --notify`, a job's `notify:`); given again, they replace the earlier ones. */
  async setNotifyUrls(batch: string, urls: readonly string[]): Promise<void> {
    await this.client.hset(this.key(batch, 'meta'), 'notify', JSON.stringify(urls));
  }

  async notifyUrls(batch: string): Promise<string[]> {
    return parseUrls(await this.client.hget(this.key(batch, 'meta'), 'notify'));
  }

  private noticeKey(batch: string, notice: Notice): string {
    return this.key(batch, `${notice}-notified`);
  }

  /** SET NX: true for the one caller that claims the batch's notice (until released, cleared or `ttlSeconds`). */
  async claimNotice(batch: string, notice: Notice, ttlSeconds?: number): Promise<boolean> {
    const key = this.noticeKey(batch, notice);
    const reply = ttlSeconds === undefined ? await this.client.set(key, '1', 'NX') : await this.client.set(key, '1', 'EX', ttlSeconds, 'NX');
    return reply === 'OK';
  }

  async releaseNotice(batch: string, notice: Notice): Promise<void> {
    await this.client.del(this.noticeKey(batch, notice));
  }

  /** Batches with webhook URLs whose rows are not all settled (done, failed for good, parked). */
  async unsettledWithNotify(): Promise<string[]> {
    const names = await this.batches();
    if (names.length === 0) return [];
    const pipeline = this.client.pipeline();
    for (const name of names) pipeline.hget(this.key(name, 'meta'), 'notify');
    const replies = (await pipeline.exec()) ?? [];
    const notified = names.filter((_, index) => parseUrls(replies[index]?.[1] as string | null).length > 0);
    const unsettled: string[] = [];
    for (const name of notified) {
      const counts = await this.counts(name);
      if (counts.done + counts.failed + counts.overBudget < counts.rows) unsettled.push(name);
    }
    return unsettled;
  }

  async markDone(batch: string, rowId: string): Promise<void> {
    await this.client.multi().sadd(this.key(batch, 'done'), rowId).hdel(this.key(batch, 'failed'), rowId).exec();
  }

  /** `billed`: the failure was an answer the provider billed (blocked, no image). */
  async markFailed(batch: string, rowId: string, reason: string, line: number | undefined, billed: boolean): Promise<void> {
    await this.client.hset(this.key(batch, 'failed'), rowId, JSON.stringify({ reason, line, billed }));
  }

  async isDone(batch: string, rowId: string): Promise<boolean> {
    return (await this.client.sismember(this.key(batch, 'done'), rowId)) === 1;
  }

  private budgetKeys(batch: string): string[] {
    return [this.key(batch, 'spend'), this.key(batch, 'meta'), this.key(batch, 'reserved'), this.key(batch, 'reserved-pico'), this.key(batch, 'over')];
  }

  /**
   * Holds `estimatePico` of the batch's budget for one call (`callId`) of a job, for `ttlMs`
   * unless renewed; or, when it does not fit, lists the job as parked over budget and says where
   * the batch stands.
   */
  async reserve(batch: string, jobId: string, callId: string, estimatePico: bigint, ttlMs: number): Promise<{ reserved: true } | { refused: BudgetRefusal }> {
    const keys = this.budgetKeys(batch);
    const reply = (await this.client.eval(RESERVE, keys.length, ...keys, jobId, callId, estimatePico.toString(), String(ttlMs))) as [1] | [0, string, string, string];
    if (reply[0] === 1) return { reserved: true };
    return { refused: { spendPico: BigInt(reply[1]), reservedPico: BigInt(reply[2]), budgetPico: BigInt(reply[3]) } };
  }

  /**
   * Ends a reservation: a billed answer's cost (exact integer picodollars) is added to the spend
   * in the same step, or, without a cost, the reservation just goes. Returns the parked job ids
   * the room now left would fit (by this call's `estimatePico`), taken off the parked list.
   */
  async settleReservation(batch: string, jobId: string, callId: string, costPico: bigint | undefined, estimatePico: bigint): Promise<string[]> {
    const keys = this.budgetKeys(batch);
    const cost = costPico === undefined ? '' : costPico.toString();
    return (await this.client.eval(SETTLE, keys.length, ...keys, jobId, callId, cost, estimatePico.toString())) as string[];
  }

  async renewReservations(batch: string, jobIds: string[], ttlMs: number): Promise<void> {
    if (jobIds.length > 0) await this.client.eval(RENEW, 1, this.key(batch, 'reserved'), String(ttlMs), ...jobIds);
  }

  /** Whether the job is still listed as parked over budget (nothing has set it going since). */
  async isOverBudget(batch: string, jobId: string): Promise<boolean> {
    return (await this.client.sismember(this.key(batch, 'over'), jobId)) === 1;
  }

  async spend(batch: string): Promise<bigint> {
    return BigInt((await this.client.get(this.key(batch, 'spend'))) ?? '0');
  }

  async counts(batch: string): Promise<BatchCounts> {
    const replies = await this.client
      .multi()
      .scard(this.key(batch, 'rows'))
      .scard(this.key(batch, 'done'))
      .hlen(this.key(batch, 'failed'))
      .scard(this.key(batch, 'over'))
      .get(this.key(batch, 'spend'))
      .hmget(this.key(batch, 'meta'), 'createdAt', 'budgetPico')
      .exec();
    const value = (index: number): unknown => replies?.[index]?.[1];
    const [createdAt, budget] = value(5) as [string | null, string | null];
    return {
      batch,
      rows: value(0) as number,
      done: value(1) as number,
      failed: value(2) as number,
      overBudget: value(3) as number,
      spendPico: BigInt((value(4) as string | null) ?? '0'),
      ...(budget ? { budgetPico: BigInt(budget) } : {}),
      ...(createdAt ? { createdAt: Number(createdAt) } : {}),
    };
  }

  /** Sets or (undefined) removes the batch's budget; a batch that reaches the new one says so again. */
  async setBudget(batch: string, budgetPico: bigint | undefined): Promise<void> {
    const meta = this.key(batch, 'meta');
    const change = this.client.multi().del(this.noticeKey(batch, 'over-budget'));
    await (budgetPico === undefined ? change.hdel(meta, 'budgetPico') : change.hset(meta, 'budgetPico', budgetPico.toString())).exec();
  }

  /** Spend and budget of a batch in one round trip, for the check before each call. */
  async spendAndBudget(batch: string): Promise<{ spendPico: bigint; budgetPico?: bigint }> {
    const replies = await this.client.multi().get(this.key(batch, 'spend')).hget(this.key(batch, 'meta'), 'budgetPico').exec();
    const spend = replies?.[0]?.[1] as string | null;
    const budget = replies?.[1]?.[1] as string | null;
    return { spendPico: BigInt(spend ?? '0'), ...(budget ? { budgetPico: BigInt(budget) } : {}) };
  }

  /** Which of `rowIds` failed in this batch. */
  /** How many rows of the batch are marked failed for good. */
  async failedCount(batch: string): Promise<number> {
    return this.client.hlen(this.key(batch, 'failed'));
  }

  /** Of these rows, those that failed for good; with `unbilledOnly`, those whose failure was not billed. */
  async failedAmong(batch: string, rowIds: string[], unbilledOnly = false): Promise<string[]> {
    if (rowIds.length === 0) return [];
    const states = await this.client.hmget(this.key(batch, 'failed'), ...rowIds);
    return rowIds.filter((_, index) => {
      const state = states[index];
      if (state === null || state === undefined) return false;
      if (!unbilledOnly) return true;
      // Marked by an earlier version (no `billed`): taken as billed, so never run again unasked.
      return (JSON.parse(state) as { billed?: boolean }).billed === false;
    });
  }

  async clearFailed(batch: string, rowIds: string[]): Promise<void> {
    if (rowIds.length > 0) await this.client.hdel(this.key(batch, 'failed'), ...rowIds);
  }

  /** Rows parked over budget in all batches. */
  async parkedTotal(): Promise<number> {
    const names = await this.batches();
    if (names.length === 0) return 0;
    const pipeline = this.client.pipeline();
    for (const name of names) pipeline.scard(this.key(name, 'over'));
    const replies = (await pipeline.exec()) ?? [];
    return replies.reduce((sum, [, count]) => sum + Number(count ?? 0), 0);
  }

  /** The jobs parked over budget, which the caller sets going again; they leave the set. */
  async takeOverBudget(batch: string): Promise<string[]> {
    const [[, members]] = (await this.client.multi().smembers(this.key(batch, 'over')).del(this.key(batch, 'over')).exec()) as [[null, string[]], [null, number]];
    return members;
  }

  /**
   * Rows that leave this batch for another (a later catalog firing took them over): they are no
   * longer this batch's rows, and its meta counts how many went and where the last went.
   */
  async handOver(batch: string, rowIds: string[], toBatch: string): Promise<void> {
    if (rowIds.length === 0) return;
    await this.client
      .multi()
      .srem(this.key(batch, 'rows'), ...rowIds)
      .hincrby(this.key(batch, 'meta'), 'handedOver', rowIds.length)
      .hset(this.key(batch, 'meta'), 'handedOverTo', toBatch)
      .exec();
  }

  /** Rows parked over budget in each of these batches, in order. */
  async parkedIn(batches: string[]): Promise<number[]> {
    if (batches.length === 0) return [];
    const pipeline = this.client.pipeline();
    for (const name of batches) pipeline.scard(this.key(name, 'over'));
    return ((await pipeline.exec()) ?? []).map(([, count]) => Number(count ?? 0));
  }

  /** Failed rows with their reasons, at most `limit`. */
  async failedRows(batch: string, limit = 50): Promise<FailedRowState[]> {
    const rows: FailedRowState[] = [];
    let cursor = '0';
    do {
      const [next, flat] = await this.client.hscan(this.key(batch, 'failed'), cursor, 'COUNT', '200');
      cursor = next;
      for (let i = 0; i + 1 < flat.length && rows.length < limit; i += 2) {
        const { reason, line } = JSON.parse(flat[i + 1]!) as { reason: string; line?: number };
        rows.push({ id: flat[i]!, reason, ...(line ? { line } : {}) });
      }
    } while (cursor !== '0' && rows.length < limit);
    return rows.sort((a, b) => a.id.localeCompare(b.id));
  }

  private get pauseReasonKey(): string {
    return `${this.prefix}:tokenhot:paused-reason`;
  }

  /** Why a worker paused the queue (bad key, no credits), for `status` and `resume`. */
  async setPauseReason(reason: string): Promise<void> {
    await this.client.set(this.pauseReasonKey, reason);
  }

  async pauseReason(): Promise<string | undefined> {
    return (await this.client.get(this.pauseReasonKey)) ?? undefined;
  }

  async clearPauseReason(): Promise<void> {
    await this.client.del(this.pauseReasonKey);
  }

  /** Batch names, oldest first. */
  async batches(): Promise<string[]> {
    return this.client.zrange(this.batchesKey, '0', '-1');
  }

  /** The batch and its sub-batches (`name/...`), as `status --batch` and `report --batch` take them. */
  async batchesUnder(batch: string): Promise<string[]> {
    return (await this.batches()).filter((name) => name === batch || name.startsWith(`${batch}/`));
  }

  /** Removes everything this module keeps for a batch (tests, and `status --forget` later). */
  async forget(batch: string): Promise<void> {
    await this.client
      .multi()
      .zrem(this.batchesKey, batch)
      .del(this.key(batch, 'meta'), this.key(batch, 'rows'), this.key(batch, 'done'), this.key(batch, 'failed'), this.key(batch, 'spend'), this.key(batch, 'reserved'), this.key(batch, 'reserved-pico'), this.key(batch, 'over'))
      .del(this.noticeKey(batch, 'finished'), this.noticeKey(batch, 'over-budget'), this.noticeKey(batch, 'stopped'))
      .exec();
  }
}

/** A meta `notify` field as a list; anything else is no URLs. */
function parseUrls(value: string | null | undefined): string[] {
  if (!value) return [];
  try {
    const urls = JSON.parse(value) as unknown;
    return Array.isArray(urls) ? urls.filter((url): url is string => typeof url === 'string') : [];
  } catch {
    return [];
  }
}
