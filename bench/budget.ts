/**
 * Budget overshoot: what a $1 cap lets the mock bill, counted from the mock's own request log
 * (every billed answer's usageMetadata at list prices), not from what the client says it spent.
 *
 * 40 rows of the pro model at 2K (about $0.137 a call) against a mock with 1-3 s of latency:
 * two `work --until-drained` processes with 4 calls each in flight, then one in-process
 * `run --concurrency 8`. The cap should hold to within the estimates' error (target: $1.15).
 *
 *   npm run bench:budget       (builds first; about half a minute)
 *   BENCH_CLI_ROOT=/path/to/another/built/checkout node --import tsx bench/budget.ts   (another version)
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { geminiBilling } from '../src/providers/gemini/usage.js';
import type { MockRequestRecord } from '../src/mock/records.js';
import { billedCostPico, picoToUsd, PriceTable } from '../src/cost/pricing.js';
import { checkRedis, envNumber, main, MOCK_KEY, REDIS_URL, redisPrefix, runCli, startMock, tempDir } from './lib/harness.js';

const MODEL = 'gemini-3-pro-image-preview';
const ROWS = envNumber('BENCH_ROWS', 40);
const CAP_USD = 1;
const TARGET_USD = 1.15;

/** What the mock billed: its billed answers at list prices. */
async function billedBy(url: string): Promise<{ usd: number; calls: number }> {
  const prices = new PriceTable();
  const records = (await (await fetch(`${url}/__mock/requests`)).json()) as MockRequestRecord[];
  let total = 0n;
  let calls = 0;
  for (const record of records) {
    if (!record.usageMetadata) continue;
    calls += 1;
    total += billedCostPico(geminiBilling(record.usageMetadata), prices.priceOf(record.model, new Date().toISOString())!)!;
  }
  return { usd: picoToUsd(total), calls };
}

async function csvIn(dir: string): Promise<string> {
  const csv = join(dir, 'rows.csv');
  const rows = Array.from({ length: ROWS }, (_, i) => `r${i},"budget bench ${i}: a ceramic mug in warm light",${MODEL},2K`);
  await writeFile(csv, ['id,prompt,model,image_size', ...rows].join('\n'));
  return csv;
}

async function queued(): Promise<{ usd: number; calls: number }> {
  const dir = await tempDir('budget-queue');
  const mock = await startMock(['--latency-ms', '1000', '--latency-jitter-ms', '2000']);
  const env = { REDIS_URL, TOKENHOT_QUEUE_PREFIX: redisPrefix('budget'), TOKENHOT_API_KEY: MOCK_KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: join(dir, 'out'), LOG_LEVEL: 'warn' };
  await runCli(['enqueue', await csvIn(dir), '--batch', 'capped', '--budget-usd', String(CAP_USD)], { env });
  const work = (): Promise<unknown> => runCli(['work', '--until-drained', '--concurrency', '4', '--no-catalog', '--plain'], { env });
  await Promise.all([work(), work()]);
  return billedBy(mock.url);
}

async function inProcess(): Promise<{ usd: number; calls: number }> {
  const dir = await tempDir('budget-local');
  const mock = await startMock(['--latency-ms', '1000', '--latency-jitter-ms', '2000']);
  const env = { TOKENHOT_API_KEY: MOCK_KEY, TOKENHOT_BASE_URL: mock.url, LOG_LEVEL: 'warn' };
  // Exit status 1: rows were left over budget, as they should be.
  await runCli(['run', await csvIn(dir), '--out', join(dir, 'out'), '--budget-usd', String(CAP_USD), '--concurrency', '8', '--plain'], { env, allowFailure: true });
  return billedBy(mock.url);
}

await main(async () => {
  await checkRedis();
  const two = await queued();
  const one = await inProcess();
  const line = (bill: { usd: number; calls: number }): string => `$${bill.usd.toFixed(4)} (${bill.calls} calls)`;
  const met = two.usd <= TARGET_USD && one.usd <= TARGET_USD;
  console.log(
    `budget ($${CAP_USD} cap, ${MODEL} at 2K, ${ROWS} rows): two work × 4 in flight billed ${line(two)}; run --concurrency 8 billed ${line(one)}` +
      ` — target ≤ $${TARGET_USD} — ${met ? 'met' : 'NOT met'}`,
  );
});
