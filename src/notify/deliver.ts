/**
 * One delivery attempt: a signed POST of an event to one URL, with a timeout, on a connection
 * pool of its own (never the endpoint's, and never with the API key). 2xx is delivered; any
 * other answer, a redirect included, or no answer is tried again later (retry-schedule.ts).
 * Each attempt is a line of `<out>/webhooks/deliveries.jsonl`.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { withoutKey, type WebhookEvent } from './events.js';
import { webhookHeaders } from './sign.js';

/** A receiver should answer at once and do its work later, as Stripe asks of its receivers. */
const TIMEOUT_MS = 10_000;

export interface AttemptResult {
  delivered: boolean;
  /** The HTTP status, when there was an answer. */
  status?: number;
  /** Why it was not delivered. */
  error?: string;
  ms: number;
}

/** What a delivery attempt needs besides the event and the URL. */
export interface SenderSettings {
  /** TOKENHOT_WEBHOOK_SECRET. */
  secret: string;
  /** Only to take it out of any body (see `withoutKey`); never sent. */
  apiKey?: string;
  timeoutMs?: number;
}

export class WebhookSender {
  private readonly agent: Agent;
  private readonly timeoutMs: number;

  constructor(private readonly settings: SenderSettings) {
    this.timeoutMs = settings.timeoutMs ?? TIMEOUT_MS;
    this.agent = new Agent({ connections: 8, keepAliveTimeout: 10_000, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs, connect: { timeout: this.timeoutMs } });
  }

  /** One POST of the event to the URL, signed at this moment. */
  async attempt(url: string, event: WebhookEvent, signal?: AbortSignal): Promise<AttemptResult> {
    const body = JSON.stringify(withoutKey(event, this.settings.apiKey));
    const started = Date.now();
    const timeout = AbortSignal.timeout(this.timeoutMs);
    try {
      const response = await request(url, {
        method: 'POST',
        dispatcher: this.agent,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        headers: webhookHeaders(this.settings.secret, event.id, body),
        body,
      });
      // The answer's body says nothing we use; read to the end so the connection can be kept.
      await response.body.dump().catch(() => undefined);
      const delivered = response.statusCode >= 200 && response.statusCode < 300;
      return { delivered, status: response.statusCode, ...(delivered ? {} : { error: `HTTP ${response.statusCode}` }), ms: Date.now() - started };
    } catch (error) {
      const reason = timeout.aborted ? `no answer in ${this.timeoutMs / 1000} s` : (error as Error).message;
      return { delivered: false, error: reason, ms: Date.now() - started };
    }
  }

  async close(): Promise<void> {
    await this.agent.close().catch(() => undefined);
  }
}

/** The URL as the delivery log and messages show it: no query, no user or password. */
export function shownUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '(not a URL)';
  }
}

export type AttemptOutcome = 'delivered' | 'retry' | 'gave up' | 'left at exit';

export interface DeliveryLine {
  at: string;
  eventId: string;
  type: string;
  url: string;
  attempt: number;
  status?: number;
  ms: number;
  error?: string;
  outcome: AttemptOutcome;
}

/** `<out>/webhooks/deliveries.jsonl` (a bucket output: this machine's spool folder): one JSON line per attempt, appended (several processes may share it). */
export class DeliveryLog {
  readonly path: string;
  private ready: Promise<unknown> | undefined;

  constructor(outDir: string) {
    this.path = join(outDir, 'webhooks', 'deliveries.jsonl');
  }

  /** Never throws: a log that cannot be written must not stop a delivery or a worker. */
  async append(event: WebhookEvent, url: string, attempt: number, result: AttemptResult, outcome: AttemptOutcome): Promise<void> {
    const line: DeliveryLine = {
      at: new Date().toISOString(),
      eventId: event.id,
      type: event.type,
      url: shownUrl(url),
      attempt,
      ...(result.status !== undefined ? { status: result.status } : {}),
      ms: result.ms,
      ...(result.error !== undefined ? { error: result.error } : {}),
      outcome,
    };
    try {
      this.ready ??= mkdir(join(this.path, '..'), { recursive: true });
      await this.ready;
      await appendFile(this.path, `${JSON.stringify(line)}\n`);
    } catch {
      this.ready = undefined;
    }
  }
}
