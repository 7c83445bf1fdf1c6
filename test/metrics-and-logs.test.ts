/**
 * What operators read: Prometheus counters that move during a run, and log lines that carry
 * batch, job, attempt, latency, status and tokens, never the key.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startCli, startMockProcess, type MockProcess } from './helpers/processes.js';
import { removePrefix, uniquePrefix } from './helpers/redis.js';
import { runInProcess } from './helpers/cli-in-process.js';

const KEY = 'metrics-key-5521';
const redisUrl = inject('redisUrl');
let dir: string;
let mock: MockProcess;
const prefix = uniquePrefix('metrics');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'thb-metrics-'));
  mock = await startMockProcess(['--api-key', KEY, '--latency-ms', '250']);
});
afterAll(async () => {
  await mock.stop();
  await removePrefix(redisUrl, prefix);
  await rm(dir, { recursive: true, force: true });
});

function metricValue(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((row) => row.startsWith(`${name}${labels} `) || (labels === '' && row.startsWith(`${name} `)));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('metrics and logs of a worker', () => {
  it('curl of /metrics during a run shows the counters moving; log lines carry the row fields and never the key', async () => {
    const csv = join(dir, 'rows.csv');
    await writeFile(csv, ['id,prompt,model,tags', ...Array.from({ length: 16 }, (_, i) => `m${i},"metrics row ${i}${i === 5 ? ' [mock:blocked]' : ''}",gemini-3-pro-image-preview,metrics`)].join('\n'));
    const env = { REDIS_URL: redisUrl, TOKENHOT_QUEUE_PREFIX: prefix, TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: join(dir, 'out'), LOG_FORMAT: 'json' };
    await runInProcess(['enqueue', csv, '--batch', 'metrics'], env);
    const worker = startCli(['work', '--until-drained', '--concurrency', '2', '--metrics-port', '0', '--no-catalog'], env);
    let port: number | undefined;
    for (let i = 0; i < 200 && !port; i++) {
      port = Number(worker.stderr().match(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/)?.[1]) || undefined;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(port).toBeDefined();
    const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const ok = (text: string): number => metricValue(text, 'tokenhot_requests_total', '{status="200"}');
    /** Scrapes until `moved` says the counters moved (the run lasts about 2 s: 16 rows, 2 at a time, 250 ms each). */
    const scrapeUntil = async (moved: (text: string) => boolean): Promise<string> => {
      for (let tries = 0; ; tries++) {
        const text = await scrape();
        if (moved(text) || tries === 400) return text;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    };
    const first = await scrapeUntil((text) => ok(text) > 0);
    const waitingAtFirst = metricValue(first, 'tokenhot_queue_jobs', '{state="waiting"}');
    const second = await scrapeUntil((text) => ok(text) > ok(first) && metricValue(text, 'tokenhot_queue_jobs', '{state="waiting"}') < waitingAtFirst);
    const ok1 = ok(first);
    const ok2 = ok(second);
    expect(ok1).toBeGreaterThan(0);
    expect(ok2).toBeGreaterThan(ok1);
    expect(metricValue(second, 'tokenhot_images_total')).toBeGreaterThan(metricValue(first, 'tokenhot_images_total'));
    expect(metricValue(second, 'tokenhot_tokens_total', '{kind="image"}')).toBeGreaterThan(metricValue(first, 'tokenhot_tokens_total', '{kind="image"}'));
    expect(metricValue(second, 'tokenhot_spend_usd_total')).toBeGreaterThan(0);
    expect(metricValue(second, 'tokenhot_queue_jobs', '{state="waiting"}')).toBeLessThan(metricValue(first, 'tokenhot_queue_jobs', '{state="waiting"}'));
    expect(second).toContain('tokenhot_request_duration_seconds_bucket');
    expect(second).toContain('tokenhot_calls_in_flight');

    const result = await worker.done;
    // 1: the blocked row failed for good.
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).not.toContain(KEY);
    const lines = result.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const done = lines.filter((line) => line.msg === 'row done');
    expect(done).toHaveLength(15);
    expect(done[0]).toMatchObject({ batch: 'metrics', attempt: 1, status: 'done', httpStatus: 200 });
    expect(done[0]).toHaveProperty('jobId');
    expect(done[0]!.latencyMs).toBeGreaterThanOrEqual(250);
    expect(done[0]!.imageTokens).toBe(1120);
    const blocked = lines.find((line) => typeof line.msg === 'string' && line.msg.startsWith('row failed: prompt blocked'));
    expect(blocked).toMatchObject({ row: 'm5', status: 'failed' });
  });
});
