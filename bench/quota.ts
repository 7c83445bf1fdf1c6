/**
 * Quota use: how much of a provider's quota two `work` processes turn into images.
 *
 * The mock enforces R = 10 requests per second (token bucket) with about 1 s of latency; two
 * workers with concurrency 16 each run for a warm-up and then 60 s of steady state, measured
 * from the mock's own request log: successful requests per second over R, and the share of
 * requests answered 429. Once with the quota unknown to the workers (they learn it), once with
 * `--rpm 600` (they are told), for each family of models:
 *   - gemini: gemini-2.5-flash-image on generateContent, whose 429 carries a RetryInfo and no
 *     Retry-After;
 *   - images: doubao-seedream-4-5-251128 on /v1/images/generations, whose 429 is the gateway's
 *     ("您已达到请求数限制：1分钟内最多请求600次": at most 600 requests in 1 minute), with no
 *     Retry-After and no rate-limit headers.
 *
 *   npm run bench:quota                          (builds first; about 6 minutes: 4 runs of 80 s)
 *   BENCH_CASES=images npm run bench:quota       (one family: about 3 minutes)
 *
 * Prints one line per family.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkRedis, envNumber, main, MOCK_KEY, REDIS_URL, redisPrefix, runCli, startCli, startMock, tempDir } from './lib/harness.js';
import type { MockRequestRecord } from '../src/mock/records.js';

const R = 10;
const WARM_UP_MS = envNumber('BENCH_WARM_UP_MS', 15_000);
const STEADY_MS = envNumber('BENCH_STEADY_MS', 60_000);

const FAMILIES = [
  { name: 'gemini', model: 'gemini-2.5-flash-image', words: 'generateContent, 429 with RetryInfo' },
  { name: 'images', model: 'doubao-seedream-4-5-251128', words: '/v1/images/generations, the gateway\u2019s 429 naming its quota' },
] as const;

interface Use {
  use: number;
  share429: number;
  line: string;
}

/** Rows enough for the whole run at R, with room to spare. */
async function rowsCsv(dir: string, model: string): Promise<string> {
  const rows = Math.ceil(((WARM_UP_MS + STEADY_MS) / 1000) * R * 1.5);
  const csv = join(dir, 'rows.csv');
  await writeFile(csv, ['id,prompt,model', ...Array.from({ length: rows }, (_, i) => `r${i},"quota bench ${i}",${model}`)].join('\n'));
  return csv;
}

async function measure(label: string, model: string, workArgs: string[]): Promise<Use> {
  const dir = await tempDir('quota');
  const prefix = redisPrefix('quota');
  const mock = await startMock(['--rps', String(R), '--latency-ms', '900', '--latency-jitter-ms', '200']);
  const env = { REDIS_URL, TOKENHOT_QUEUE_PREFIX: prefix, TOKENHOT_API_KEY: MOCK_KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: join(dir, 'out'), TOKENHOT_DURABLE: '0', LOG_LEVEL: 'warn' };
  await runCli(['enqueue', await rowsCsv(dir, model), '--batch', 'quota'], { env });

  const started = Date.now();
  const workers = [0, 1].map(() => startCli(['work', '--concurrency', '16', '--no-catalog', '--plain', ...workArgs], { env }));
  let records: MockRequestRecord[];
  let from: number;
  let to: number;
  try {
    await new Promise((resolve) => setTimeout(resolve, WARM_UP_MS));
    from = Date.now();
    await new Promise((resolve) => setTimeout(resolve, STEADY_MS));
    to = Date.now();
    // The mock logs a request when it answers it: wait out the latency of those received last.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    records = (await (await fetch(`${mock.url}/__mock/requests`)).json()) as MockRequestRecord[];
  } finally {
    await Promise.all(workers.map((worker) => worker.stop()));
    await mock.stop();
  }

  // When the 429s came (s after the workers started; the window is from..to): a pause they cost shows as a gap.
  const refusedAt = records.filter((record) => record.status === 429).map((record) => ((record.receivedAt - started) / 1000).toFixed(1));
  process.stderr.write(`${label} 429s at ${refusedAt.join(', ') || 'none'} s; window ${((from - started) / 1000).toFixed(0)}-${((to - started) / 1000).toFixed(0)} s\n`);
  const window = records.filter((record) => record.receivedAt >= from && record.receivedAt < to);
  const ok = window.filter((record) => record.status === 200).length;
  const limited = window.filter((record) => record.status === 429).length;
  const use = ok / ((to - from) / 1000) / R;
  const share429 = window.length > 0 ? limited / window.length : 0;
  return { use, share429, line: `${label} ${use.toFixed(2)} of R (${(share429 * 100).toFixed(1)}% 429s, ${ok} ok / ${window.length} requests in ${((to - from) / 1000).toFixed(0)} s)` };
}

function chosenFamilies(): (typeof FAMILIES)[number][] {
  const asked = (process.env.BENCH_CASES ?? '').split(',').map((name) => name.trim()).filter(Boolean);
  if (asked.length === 0) return [...FAMILIES];
  const unknown = asked.filter((name) => !FAMILIES.some((family) => family.name === name));
  if (unknown.length > 0) throw new Error(`BENCH_CASES: no case ${unknown.join(', ')} (there are ${FAMILIES.map((family) => family.name).join(', ')})`);
  return FAMILIES.filter((family) => asked.includes(family.name));
}

await main(async () => {
  await checkRedis();
  for (const family of chosenFamilies()) {
    const unknown = await measure('quota unknown:', family.model, []);
    const known = await measure('--rpm 600:', family.model, ['--rpm', String(R * 60)]);
    // The images endpoint's targets are issue 11's; Gemini's were set before it.
    const targets = family.name === 'images' ? { unknownUse: 0.95, unknown429: 0.03 } : { unknownUse: 0.9, unknown429: 0.05 };
    const pass = unknown.use >= targets.unknownUse && unknown.share429 <= targets.unknown429 && known.use >= 0.97 && known.share429 <= 0.01;
    console.log(
      `quota ${family.name} (${family.model}, ${family.words}; R = ${R}/s, 2 workers × 16): ${unknown.line}; ${known.line} — ` +
        `targets ≥ ${targets.unknownUse.toFixed(2)} with ≤ ${targets.unknown429 * 100}% 429s, ≥ 0.97 with ≤ 1% — ${pass ? 'met' : 'NOT met'}`,
    );
  }
});
