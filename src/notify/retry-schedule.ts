/**
 * When a delivery that failed (non-2xx, no answer) is tried again: 10 s, 30 s, 1.5 min, 4.5 min,
 * ... tripling up to 1 h between attempts, for 24 h; then it is given up and logged.
 * `TOKENHOT_WEBHOOK_BACKOFF_MS` (for tests) replaces the 10 s and scales the whole schedule with
 * it: the cap is 360 times it and the window 8,640 times it.
 */
export interface RetrySchedule {
  /** Delay before the first retry. @default 10000 */
  baseMs: number;
  /** Attempts in all, the first included, so that the retries span the window. */
  attempts: number;
}

const DEFAULT_BASE_MS = 10_000;
const CAP_FACTOR = 360;
const WINDOW_FACTOR = 8_640;

/** The delay after the `failures`-th failed attempt (1 for the first). */
export function retryDelayMs(failures: number, baseMs: number): number {
  return Math.min(baseMs * 3 ** Math.max(0, failures - 1), baseMs * CAP_FACTOR);
}

/** Attempts whose retries all start within the window (24 h by default: 29 attempts). */
function attemptsWithin(baseMs: number): number {
  const windowMs = baseMs * WINDOW_FACTOR;
  let attempts = 1;
  for (let waited = retryDelayMs(1, baseMs); waited <= windowMs; waited += retryDelayMs(attempts, baseMs)) attempts += 1;
  return attempts;
}

export function retrySchedule(env: NodeJS.ProcessEnv = process.env): RetrySchedule {
  const given = Number(env.TOKENHOT_WEBHOOK_BACKOFF_MS);
  const baseMs = Number.isFinite(given) && given > 0 ? given : DEFAULT_BASE_MS;
  return { baseMs, attempts: attemptsWithin(baseMs) };
}
