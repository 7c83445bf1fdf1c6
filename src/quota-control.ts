/**
 * The provider's quota, shared by every worker on every machine through the images queue's
 * rate limiter in Redis.
 *
 * BullMQ only honours a manual `queue.rateLimit(ms)` when the queue has a rate limiter
 * configured (moveToActive checks the limiter key only when a `max` is known), so every worker
 * makes sure the queue has a global rate limit: the `--rpm` quota when given, else one too large
 * to ever bind. A manual limit stores MAX_SAFE_INTEGER in the limiter key, which is how
 * `isPaused` tells it from ordinary limiter counting.
 */
import type { Queue } from 'bullmq';
import type { Logger } from './log.js';

const MANUAL_LIMIT = Number.MAX_SAFE_INTEGER;
/** A rate limit that never binds: it only gives manual 429 pauses something to act on. */
const OPEN_LIMIT = { max: 1_000_000_000, duration: 1_000 };

/** requests per minute → BullMQ's fixed window, as even as possible (one job per slot). */
export function rateLimitFor(rpm: number): { max: number; duration: number } {
  return rpm <= 6_000 ? { max: 1, duration: Math.max(1, Math.round(60_000 / rpm)) } : { max: Math.round(rpm / 600), duration: 100 };
}

export interface QuotaSettings {
  rpm?: number;
  globalConcurrency?: number;
}

export class QuotaControl {
  constructor(
    private readonly queue: Queue,
    private readonly log: Logger,
  ) {}

  async init(settings: QuotaSettings): Promise<void> {
    if (settings.rpm) {
      const { max, duration } = rateLimitFor(settings.rpm);
      await this.queue.setGlobalRateLimit(max, duration);
      this.log.info({ rpm: settings.rpm, max, duration }, 'quota set for all workers');
    } else {
      const current = await this.queue.getGlobalRateLimit();
      if (!current) await this.queue.setGlobalRateLimit(OPEN_LIMIT.max, OPEN_LIMIT.duration);
    }
    if (settings.globalConcurrency) {
      await this.queue.setGlobalConcurrency(settings.globalConcurrency);
      this.log.info({ globalConcurrency: settings.globalConcurrency }, 'cap on calls in flight set for all workers');
    }
  }

  /** True while a 429 pause of any worker is in force. */
  async isPaused(): Promise<boolean> {
    return (await this.queue.getRateLimitTtl(MANUAL_LIMIT)) > 0;
  }

  /** Pauses every worker for at least `ms`; never shortens a longer pause already in force. */
  async pauseFor(ms: number): Promise<void> {
    const remaining = await this.queue.getRateLimitTtl(MANUAL_LIMIT);
    if (ms > remaining) await this.queue.rateLimit(ms);
  }

  /** A call went through (the hook for pacing that learns the quota). */
  succeeded(): void {}

  async close(): Promise<void> {}
}
