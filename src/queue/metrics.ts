/**
 * Prometheus metrics of a worker process (`work --metrics-port N`, served at /metrics):
 * requests by status, call latency, images, tokens by kind, spend, queue depth, calls in flight
 * and the shared pace. Queue depth is read from Redis when scraped, so it is never stale.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { TokenCounts } from '../core/types.js';

export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'tokenhot_requests_total',
    help: 'Calls of the endpoint by HTTP status (or "network" when no answer came)',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: 'tokenhot_request_duration_seconds',
    help: 'Time from sending a call to its answer read in full',
    labelNames: ['status'] as const,
    // Image calls take 15-70 s, 4K ones past 90 s.
    buckets: [0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300],
    registers: [this.registry],
  });
  private readonly images = new Counter({ name: 'tokenhot_images_total', help: 'Final images saved', registers: [this.registry] });
  private readonly rows = new Counter({ name: 'tokenhot_rows_total', help: 'Rows settled, by outcome', labelNames: ['outcome'] as const, registers: [this.registry] });
  private readonly tokens = new Counter({
    name: 'tokenhot_tokens_total',
    help: 'Billed tokens by kind (prompt, image output, text output, thoughts)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  private readonly spend = new Counter({ name: 'tokenhot_spend_usd_total', help: 'Spend by the price table, in USD', registers: [this.registry] });
  private readonly inFlight = new Gauge({ name: 'tokenhot_calls_in_flight', help: 'Calls of this worker under way', registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: 'tokenhot_queue_jobs', help: 'Jobs of the images queue by state', labelNames: ['state'] as const, registers: [this.registry] });
  readonly pace = new Gauge({ name: 'tokenhot_pace_calls_per_second', help: 'The shared pace (0 while none is known), by quota scope (all: one pace for every model)', labelNames: ['scope'], registers: [this.registry] });
  readonly concurrency = new Gauge({ name: 'tokenhot_worker_concurrency', help: 'Calls this worker may have in flight', registers: [this.registry] });

  callStarted(): () => void {
    this.inFlight.inc();
    const stopTimer = this.latency.startTimer();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.inFlight.dec();
      stopTimer();
    };
  }

  /** One call's answer: `status` is the HTTP status, or "network". */
  answered(status: number | 'network', seconds?: number): void {
    this.requests.inc({ status: String(status) });
    if (seconds !== undefined) this.latency.observe({ status: String(status) }, seconds);
  }

  billed(counts: TokenCounts, images: number, costUsd: number | undefined): void {
    this.tokens.inc({ kind: 'prompt' }, counts.promptTokens);
    this.tokens.inc({ kind: 'image' }, counts.imageOutputTokens);
    this.tokens.inc({ kind: 'text' }, counts.textOutputTokens);
    this.tokens.inc({ kind: 'thoughts' }, counts.thoughtsTokens);
    this.images.inc(images);
    if (costUsd !== undefined) this.spend.inc(costUsd);
  }

  settled(outcome: 'done' | 'failed'): void {
    this.rows.inc({ outcome });
  }
}

/** Serves `/metrics`; `collect` runs before each scrape (queue depth from Redis). */
export async function serveMetrics(metrics: WorkerMetrics, port: number, host: string, collect: () => Promise<void>): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end('try /metrics\n');
      return;
    }
    collect()
      .catch(() => undefined)
      .then(() => metrics.registry.metrics())
      .then((text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(text);
      })
      .catch((error: unknown) => res.writeHead(500).end(String(error)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
