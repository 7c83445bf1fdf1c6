/**
 * The attempt policy, one place for both runners: after a failed call of a row, each asks
 * `nextStep` what to do and acts on the answer (the in-process runner in its loop; the BullMQ
 * worker through BullMQ, which also takes `backoffDelay` as its backoff strategy).
 */
import { CallError } from '../core/errors.js';

export interface RetryPolicy {
  /** Calls of one row that may end in a transient error (429s are not counted). @default 5 */
  attempts: number;
  /** First backoff ceiling; doubles each attempt. @default 2000 */
  baseDelayMs: number;
  /** Largest backoff ceiling. @default 120000 */
  maxDelayMs: number;
  /** Wait after a 429 that names no delay. @default 5000 */
  defaultRateLimitMs: number;
  /** Wait after a per-day quota is exhausted. @default 3600000 */
  perDayPauseMs: number;
  /** 429s one row may wait out before it fails (a provider that never lets up). @default 200 */
  maxRateLimitWaits: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  attempts: 5,
  baseDelayMs: 2_000,
  maxDelayMs: 120_000,
  defaultRateLimitMs: 5_000,
  perDayPauseMs: 3_600_000,
  maxRateLimitWaits: 200,
};

/**
 * Exponential backoff with full jitter (AWS architecture blog): a random wait between 0 and
 * min(max, base * 2^(attempt-1)), so that many rows failing together do not retry together.
 */
export function backoffDelay(attemptsMade: number, policy: RetryPolicy = DEFAULT_RETRY_POLICY, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attemptsMade - 1));
  return Math.round(random() * ceiling);
}

/**
 * How long everyone must hold off after a 429. One that names its quota ("at most 600 requests
 * in 1 minute") but no delay caps the pace at that quota at once, so one call's share of it is
 * pause enough: waiting the default (5 s) on every worker cost about 8% of the quota each time
 * the window was brushed (bench:quota).
 */
export function rateLimitDelay(error: CallError, policy: RetryPolicy = DEFAULT_RETRY_POLICY): number {
  const unnamed = error.namedQuota ? Math.min(Math.ceil(1000 / error.namedQuota), policy.defaultRateLimitMs) : policy.defaultRateLimitMs;
  const asked = error.retryAfterMs ?? unnamed;
  return error.perDay ? Math.max(asked, policy.perDayPauseMs) : asked;
}

export type NextStep =
  | { action: 'retry'; delayMs: number }
  /**
   * Hold off every call; a per-day quota will not clear for hours (each runner says what it does
   * then). `namedQuota`: calls per second the provider said it allows, the pace's new ceiling.
   */
  | { action: 'waitForQuota'; delayMs: number; perDay: boolean; namedQuota?: number }
  | { action: 'fail'; reason: string }
  | { action: 'stop'; reason: string };

/**
 * What a runner does after a failed call of a row that has used `attemptsMade` attempts and
 * waited out `rateLimitWaits` 429s before this one.
 */
export function nextStep(error: CallError, attemptsMade: number, policy: RetryPolicy = DEFAULT_RETRY_POLICY, rateLimitWaits = 0): NextStep {
  switch (error.kind) {
    case 'rateLimited':
      if (rateLimitWaits >= policy.maxRateLimitWaits) return { action: 'fail', reason: `still rate limited after ${rateLimitWaits} waits (${error.message})` };
      return { action: 'waitForQuota', delayMs: rateLimitDelay(error, policy), perDay: error.perDay, ...(error.namedQuota ? { namedQuota: error.namedQuota } : {}) };
    case 'transient':
      return attemptsMade >= policy.attempts
        ? { action: 'fail', reason: `${error.message} (gave up after ${attemptsMade} attempt${attemptsMade === 1 ? '' : 's'})` }
        : { action: 'retry', delayMs: backoffDelay(attemptsMade, policy) };
    case 'rowFailed':
      return { action: 'fail', reason: error.message };
    case 'fatal':
      return { action: 'stop', reason: error.message };
  }
}

/**
 * Rows that give up because the endpoint cannot be reached at all (a wrong host or port in
 * TOKENHOT_BASE_URL, no network) are not the rows' fault: after `limit` such rows in a row, with
 * no answer of any kind between them, the run stops as fatal instead of grinding through every
 * row's attempts. Any answer (an error status too) resets the count.
 */
export class ReachWatch {
  private streak = 0;

  constructor(private readonly limit = 3) {}

  /** The endpoint answered something. */
  answered(): void {
    this.streak = 0;
  }

  /** A row gave up on `error`; returns the fatal error that ends the run, once it is time. */
  gaveUp(error: CallError): CallError | undefined {
    if (!error.unreachable) {
      this.streak = 0;
      return undefined;
    }
    this.streak += 1;
    if (this.streak < this.limit) return undefined;
    return new CallError('fatal', `the endpoint cannot be reached: ${this.streak} rows in a row gave up on ${error.message}; check TOKENHOT_BASE_URL and the network`, {
      reason: error.reason,
    });
  }
}

/**
 * A model the endpoint does not know (a typo, a renamed or retired id) fails every row of it:
 * after `limit` rows of one model in one batch in a row are refused as "model not found", with no
 * other answer for it between them, the batch's remaining rows of that model are not sent but
 * fail with the reason (unbilled, so a re-run with the id fixed tries them). A long-lived worker
 * lets one row try again after `retryAfterMs`, in case the gateway's model list came back.
 */
export class ModelWatch {
  private readonly streaks = new Map<string, number>();
  private readonly missing = new Map<string, { reason: string; until: number }>();

  constructor(
    private readonly limit = 3,
    private readonly retryAfterMs = 10 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Why rows of `model` in `batch` are no longer sent; undefined while they are. */
  stopped(batch: string, model: string): string | undefined {
    const key = keyOf(batch, model);
    const missing = this.missing.get(key);
    if (!missing) return undefined;
    if (this.now() < missing.until) return missing.reason;
    // Time to look again: one more refusal stops the model again.
    this.missing.delete(key);
    this.streaks.set(key, this.limit - 1);
    return undefined;
  }

  /**
   * A row of `model` in `batch` settled; a refusal as model not found counts toward the limit.
   * Returns the reason when this row is the one that stopped the model (for a warning).
   */
  settled(batch: string, model: string, outcome: { status: 'done' | 'failed'; reason?: string; modelNotFound?: boolean }): string | undefined {
    const key = keyOf(batch, model);
    if (outcome.status !== 'failed' || !outcome.modelNotFound) {
      this.streaks.delete(key);
      return undefined;
    }
    const streak = (this.streaks.get(key) ?? 0) + 1;
    this.streaks.set(key, streak);
    if (streak < this.limit || this.missing.has(key)) return undefined;
    const reason = `not sent: ${streak} rows of ${model} in a row were refused as unknown to the endpoint (${outcome.reason ?? 'HTTP 404'}); check the model id`;
    this.missing.set(key, { reason, until: this.now() + this.retryAfterMs });
    return reason;
  }
}

const keyOf = (batch: string, model: string): string => `${batch}\u0000${model}`;
