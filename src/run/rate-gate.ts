/**
 * Pacing for the calls of one process (the in-process runner): a gate that closes for the delay
 * a 429 asks for, and a pace (pacing.ts) that spaces call starts evenly. Across processes the
 * BullMQ worker does the same through Redis (queue/quota-control.ts).
 */
import { admittedRate, afterRateLimited, afterSuccesses, initialPace, withNamedQuota, type PaceState } from './pacing.js';

export class RateGate {
  private openAt = 0;

  /** Keeps the gate closed for at least `ms` from now. */
  closeFor(ms: number): void {
    this.openAt = Math.max(this.openAt, Date.now() + ms);
  }

  /** Milliseconds until the gate opens (0 when open). */
  remainingMs(): number {
    return Math.max(0, this.openAt - Date.now());
  }

  /** Resolves when the gate is open; rejects when `signal` aborts. */
  async wait(signal?: AbortSignal): Promise<void> {
    for (let left = this.remainingMs(); left > 0; left = this.remainingMs()) {
      await sleep(left, signal);
    }
  }
}

/** The gate plus a learned (or `--rpm`) pace: call starts are spaced 1/rate apart. */
export class LocalPacer {
  private readonly gate = new RateGate();
  private state: PaceState;
  private nextStartAt = 0;
  /** Bumped on every 429: slots handed out before it are void. */
  private epoch = 0;
  /** Start times of recent calls, for the first estimate of the pace when a 429 comes. */
  private starts: number[] = [];
  private refusals: number[] = [];

  constructor(rpm?: number) {
    this.state = initialPace(rpm);
  }

  /** Calls per second, or undefined while no limit is known. */
  get rate(): number | undefined {
    return this.state.rate;
  }

  /** Waits for the gate and for this call's slot in the pace. */
  async acquire(signal?: AbortSignal): Promise<void> {
    for (;;) {
      await this.gate.wait(signal);
      const rate = this.state.rate;
      const epoch = this.epoch;
      const now = Date.now();
      if (rate !== undefined) {
        const slot = Math.max(now, this.nextStartAt);
        this.nextStartAt = slot + 1000 / rate;
        if (slot > now) await sleep(slot - now, signal);
      }
      // A 429 while this call waited for its slot voids the slot: take a new one at the new pace.
      if (epoch === this.epoch && this.gate.remainingMs() === 0) {
        this.recordStart(Date.now());
        return;
      }
    }
  }

  private recordStart(now: number): void {
    this.starts.push(now);
    if (this.starts.length > 1_000) this.starts = this.starts.filter((time) => now - time < 3_000);
  }

  /** A 429: hold off for `delayMs`, slow down, and never exceed a quota the provider named. */
  rateLimited(delayMs: number, namedQuota?: number): void {
    this.gate.closeFor(delayMs);
    const now = Date.now();
    this.refusals = [...this.refusals.filter((time) => now - time < 3_000), now];
    this.state = withNamedQuota(afterRateLimited(this.state, now, admittedRate(this.starts, this.refusals, now)), namedQuota);
    // Slots handed out at the old pace are void: restart the spacing after the pause.
    this.epoch += 1;
    this.nextStartAt = now + delayMs;
  }

  succeeded(): void {
    this.state = afterSuccesses(this.state, 1);
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
