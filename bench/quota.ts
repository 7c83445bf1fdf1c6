/**
 * Quota use: how much of a provider's quota two `work` processes turn into images.
 *
 * The mock enforces R = 10 requests per second (token bucket, 429 with RetryInfo, no
 * Retry-After) with about 1 s of latency; two workers with concurrency 16 each run for a warm-up
 * and then 60 s of steady state, measured from the mock's own request log: successful requests
 * per second over R, and the share of requests answered 429. Once with the quota unknown to the
 * workers (they learn it), once with `--rpm 600` (they are told).
 *
 *   npm run bench:quota          (builds first; about 3 minutes)
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkRedis, envNumber, main, MOCK_KEY, REDIS_URL, redisPrefix, runCli, startCli, startMock, tempDir } from './lib/harness.js';
import type { MockRequestRecord } from '../src/mock/records.js';

const R = 10;
const WARM_UP_MS = envNumber('BENCH_WARM_UP_MS', 15_000);
const STEADY_MS = envNumber('BENCH_STEADY_MS', 60_000);

async function measure(label: string, workArgs: string[]): Promise<{ use: number; share429: number; line: string }> {
  const dir = await tempDir('quota');
  const prefix = redisPrefix('quota');
  const mock = await startMock(['--rps', String(R), '--latency-ms', '900', '--latency-jitter-ms', '200']);
  const env = { REDIS_URL, TOKENHOT_QUEUE_PREFIX: prefix, TOKENHOT_API_KEY: MOCK_KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: join(dir, 'out'), TOKENHOT_DURABLE: '0', LOG_LEVEL: 'warn' };
  const rows = Math.ceil(((WARM_UP_MS + STEADY_MS) / 1000) * R * 1.5);
  const csv = join(dir, 'rows.csv');
  await writeFile(csv, ['id,prompt,model', ...Array.from({ length: rows }, (_, i) => `r${i},"quota bench ${i}",gemini-2.5-flash-image`)].join('\n'));
  await runCli(['enqueue', csv, '--batch', 'quota'], { env });

  const workers = [0, 1].map(() => startCli(['work', '--concurrency', '16', '--no-catalog', '--plain', ...workArgs], { env }));
  await new Promise((resolve) => setTimeout(resolve, WARM_UP_MS));
  const from = Date.now();
  await new Promise((resolve) => setTimeout(resolve, STEADY_MS));
  const to = Date.now();
  // The mock logs a request when it answers it: wait out the latency of those received last.
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  const records = (await (await fetch(`${mock.url}/__mock/requests`)).json()) as MockRequestRecord[];
  await Promise.all(workers.map((worker) => worker.stop()));

  const window = records.filter((record) => record.receivedAt >= from && record.receivedAt < to);
  const ok = window.filter((record) => record.status === 200).length;
  const limited = window.filter((record) => record.status === 429).length;
  const use = ok / ((to - from) / 1000) / R;
  const share429 = window.length > 0 ? limited / window.length : 0;
  return { use, share429, line: `${label} ${use.toFixed(2)} of R (${(share429 * 100).toFixed(1)}% 429s, ${ok} ok / ${window.length} requests in ${((to - from) / 1000).toFixed(0)} s)` };
}

await main(async () => {
  await checkRedis();
  const unknown = await measure('quota unknown:', []);
  const known = await measure('--rpm 600:', ['--rpm', String(R * 60)]);
  const pass = unknown.use >= 0.9 && unknown.share429 <= 0.05 && known.use >= 0.97 && known.share429 <= 0.01;
  console.log(`quota (R = ${R}/s, 2 workers × 16): ${unknown.line}; ${known.line} — targets ≥ 0.90 with ≤ 5% 429s, ≥ 0.97 with ≤ 1% — ${pass ? 'met' : 'NOT met'}`);
});
