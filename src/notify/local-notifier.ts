/**
 * In-process delivery (`run` without REDIS_URL): best effort. Each event is posted to each URL
 * at once and, on failure, again on the retry schedule while the process runs; at exit
 * (`close`) the deliveries still under way get a short grace, and whatever is left then is
 * logged as left and not tried again. Queue mode keeps its retries in Redis (webhook-queue.ts).
 */
import type { Config } from '../core/config.js';
import type { WebhookEvent, WebhookOutbox } from './events.js';
import { DeliveryLog, shownUrl, WebhookSender } from './deliver.js';
import { retryDelayMs, retrySchedule, type RetrySchedule } from './retry-schedule.js';
import { localDirOf } from '../output/location.js';

/** How long `close` waits for deliveries still under way: time for a first retry (10 s) at exit. */
export const EXIT_GRACE_MS = 15_000;

export class LocalNotifier implements WebhookOutbox {
  private readonly pending = new Set<Promise<void>>();
  private readonly stop = new AbortController();

  constructor(
    private readonly sender: WebhookSender,
    private readonly log: DeliveryLog,
    private readonly schedule: RetrySchedule,
    private readonly warn: (message: string) => void,
  ) {}

  async send(urls: readonly string[], event: WebhookEvent): Promise<void> {
    for (const url of urls) {
      const delivery = this.deliver(url, event);
      this.pending.add(delivery);
      void delivery.finally(() => this.pending.delete(delivery));
    }
  }

  /** Waits up to `graceMs` for the deliveries under way, then leaves the rest. */
  async close(graceMs = EXIT_GRACE_MS): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([Promise.allSettled([...this.pending]), grace]);
    clearTimeout(timer);
    this.stop.abort();
    await Promise.allSettled([...this.pending]);
    await this.sender.close();
  }

  /** One event to one URL, attempt after attempt, until delivered, given up or left at exit. */
  private async deliver(url: string, event: WebhookEvent): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      const result = await this.sender.attempt(url, event, this.stop.signal);
      const last = attempt >= this.schedule.attempts;
      if (result.delivered) return this.log.append(event, url, attempt, result, 'delivered');
      const leaving = this.stop.signal.aborted;
      await this.log.append(event, url, attempt, result, leaving ? 'left at exit' : last ? 'gave up' : 'retry');
      if (!leaving && !last && (await this.wait(retryDelayMs(attempt, this.schedule.baseMs)))) continue;
      // The next attempt is not made: the process is leaving (or 24 h are over).
      if (!leaving && !last) await this.log.append(event, url, attempt + 1, { delivered: false, error: 'not attempted: the process exited', ms: 0 }, 'left at exit');
      this.warn(`webhook ${event.type} (${event.id}) not delivered to ${shownUrl(url)} after ${attempt} attempt(s): ${result.error}`);
      return;
    }
  }

  /** False when the process is leaving before the delay is over. */
  private wait(ms: number): Promise<boolean> {
    const { signal } = this.stop;
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      }, ms);
      const onAbort = (): void => {
        clearTimeout(timer);
        resolve(false);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** A notifier for this process, signing with the secret (checked by `requireWebhookSecret`). */
export function openLocalNotifier(config: Pick<Config, 'webhookSecret' | 'apiKey' | 'outDir'>, warn: (message: string) => void): LocalNotifier {
  if (!config.webhookSecret) throw new Error('openLocalNotifier needs TOKENHOT_WEBHOOK_SECRET (see requireWebhookSecret)');
  const sender = new WebhookSender({ secret: config.webhookSecret, apiKey: config.apiKey });
  return new LocalNotifier(sender, new DeliveryLog(localDirOf(config.outDir)), retrySchedule(), warn);
}
