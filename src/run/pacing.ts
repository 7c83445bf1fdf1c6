/**
 * Pacing that learns the provider's quota, one rule for both runners.
 *
 * Without a known quota, calls start as fast as concurrency allows until the first 429; the pace
 * is then set a little under the rate at which calls were getting past the quota (started and
 * not refused), and lowered again on a further 429 (at most once a second). Starts and refusals
 * are known at once, unlike successes, which lag a whole call behind: an estimate from successes
 * would come out far too low at the start, and a pace too low takes thousands of calls to creep
 * back. From there it creeps up a
 * fraction of a percent with every success and drops by a fixed factor on a 429 (at most once per
 * congestion event), so the calls settle just under the quota instead of bouncing off it and
 * sitting out each retryDelay. With `--rpm` the pace starts at that quota and never exceeds it.
 *
 * Why multiplicative creep per success rather than a fixed step per second: the number of calls
 * between two 429s is then the same at any quota (about `ln(1/decrease) / creep` ≈ 60), so the
 * share of 429s (one or two per cycle, ~3%) and the average use of the quota (~(1+decrease)/2 ≈
 * 0.92) do not depend on how large the quota is.
 */

export const PACING = {
  /** Factor applied to the pace on a 429. */
  decrease: 0.85,
  /** Factor applied per successful call. */
  creepPerSuccess: 1.0027,
  /** Further 429s within this long after a decrease belong to the same event. */
  decreaseCooldownMs: 1_000,
  /** Never slower than this (requests per second). */
  minRate: 0.05,
} as const;

export interface PaceState {
  /** Calls per second; undefined while no limit is known (start as fast as allowed). */
  rate?: number;
  /** The `--rpm` quota per second, when given: the pace never goes above it. */
  ceiling?: number;
  /** When the pace was last decreased (ms since epoch). */
  decreasedAt?: number;
}

/**
 * After a 429: a lower pace. `admittedRate` is how fast calls got past the quota lately (started
 * and not answered 429, per second). Decreasing from it rather than from the pace matters: a
 * quota with a burst allowance lets a pace run above the quota for a while, so by the first 429
 * the pace may be well above what the quota admits, and a decrease from there would not be one.
 */
export function afterRateLimited(state: PaceState, now: number, admittedRate: number): PaceState {
  if (state.decreasedAt !== undefined && now - state.decreasedAt < PACING.decreaseCooldownMs) return state;
  const admitted = Math.max(admittedRate, PACING.minRate);
  const base = state.rate === undefined ? admitted : Math.min(state.rate, admitted);
  return { ...state, rate: Math.max(PACING.minRate, base * PACING.decrease), decreasedAt: now };
}

/** After `successes` calls went through: a slightly higher pace. */
/**
 * A quota the provider names in its 429 ("at most M requests in N minutes"): the pace goes no
 * higher than that from now on, as with `--rpm`, instead of waiting out a whole window.
 */
export function withNamedQuota(state: PaceState, callsPerSecond: number | undefined): PaceState {
  if (callsPerSecond === undefined || !(callsPerSecond > 0)) return state;
  const ceiling = Math.min(state.ceiling ?? Infinity, callsPerSecond);
  return { ...state, ceiling, rate: Math.min(state.rate ?? ceiling, ceiling) };
}

export function afterSuccesses(state: PaceState, successes: number): PaceState {
  if (state.rate === undefined || successes <= 0) return state;
  const rate = state.rate * PACING.creepPerSuccess ** successes;
  return { ...state, rate: state.ceiling === undefined ? rate : Math.min(state.ceiling, rate) };
}

/** The pace for a given `--rpm` (or none). */
export function initialPace(rpm: number | undefined, learned: PaceState = {}): PaceState {
  if (rpm === undefined) return { ...learned, ceiling: undefined };
  const ceiling = rpm / 60;
  // The pace starts at the quota the user gives, whatever was learned before.
  return { ...learned, ceiling, rate: ceiling };
}

/**
 * A pace as BullMQ's fixed-window rate limiter (`max` jobs per `duration` ms): windows of about a
 * second hold `max` starts, so the rounding stays small while the quota's burst absorbs each
 * window's starts.
 */
export function windowFor(rate: number): { max: number; duration: number } {
  const max = Math.max(1, Math.round(rate));
  return { max, duration: Math.max(1, Math.round((max * 1000) / rate)) };
}

/**
 * Calls per second that got past the quota: starts minus refusals (times in ms) over the last
 * `windowMs`, or over the time since the first start when that is shorter (at the very start),
 * but never less than a quarter second.
 */
export function admittedRate(starts: readonly number[], refusals: readonly number[], now: number, windowMs = 3_000): number {
  const recent = starts.filter((time) => now - time < windowMs);
  if (recent.length === 0) return 0;
  const refused = refusals.filter((time) => now - time < windowMs).length;
  const span = Math.max(250, Math.min(windowMs, now - Math.min(...recent)));
  return (Math.max(0, recent.length - refused) * 1000) / span;
}

/**
 * Whose quota a row's call counts against: one for every row. Tokenhot's gateway counts requests
 * per account across models and API families ("at most M requests in N minutes"), and the mock
 * does the same. Measured against it, paces learned apart went wrong: a pace per model made the
 * demo's 20 Gemini rows take 61 s instead of 4 s, and a pace per provider made the 32 rows of both
 * families take 227 s, since a scope that first meets the shared quota when another has used it up
 * learns a pace near zero from its own few calls. Gemini's per-model quotas sit behind the
 * gateway's. The runners keep one pace per scope: this is the one place to split them.
 */
export function quotaScope(_row: { model: string }): string {
  return '';
}
