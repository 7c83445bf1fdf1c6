/**
 * Budget caps hold to the cent: each call's estimate is reserved before it starts, in-process and
 * across two workers sharing one Redis counter, so the mock bills at most the cap plus the
 * estimates' error of the calls in flight.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { geminiBilling } from '../src/providers/gemini/usage.js';
import { billedCostPico, picoToUsd, PriceTable } from '../src/cost/pricing.js';
import type { LedgerEntry } from '../src/core/types.js';
import { runInProcess } from './helpers/cli-in-process.js';
import { startCli, startMockProcess, type CliProcess, type MockProcess } from './helpers/processes.js';
import { removePrefix, uniquePrefix } from './helpers/redis.js';
import { isSidecar } from './helpers/output-files.js';

const KEY = 'budget-key-31';
const redisUrl = inject('redisUrl');
const prices = new PriceTable();

let dir: string;
let mock: MockProcess;
const prefixes: string[] = [];
const processes: CliProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'thb-budget-'));
  mock = await startMockProcess(['--api-key', KEY, '--latency-ms', '60', '--latency-jitter-ms', '60', '--extra-model', 'gemini-9-image']);
});
afterEach(async () => {
  for (const process of processes.splice(0)) if (process.child.exitCode === null) process.child.kill('SIGKILL');
  for (const prefix of prefixes.splice(0)) await removePrefix(redisUrl, prefix);
});
afterAll(async () => {
  await mock.stop();
  await rm(dir, { recursive: true, force: true });
});

/** 40 rows of the pro model at 2K: about $0.137 a call, $5.5 in all at list prices. */
async function writeCsv(name: string): Promise<string> {
  const path = join(dir, `${name}.csv`);
  const rows = Array.from({ length: 40 }, (_, i) => `b${i},"budget row ${i} for ${name}",gemini-3-pro-image-preview,2K`);
  await writeFile(path, ['id,prompt,model,image_size', ...rows].join('\n'));
  return path;
}

/** What the mock itself billed for the rows of a file (its answers' usage at list prices). */
async function billedByMock(name: string): Promise<number> {
  let total = 0n;
  for (const record of await mock.requests()) {
    if (record.usageMetadata && record.prompt.includes(`for ${name}`)) total += billedCostPico(geminiBilling(record.usageMetadata), prices.priceOf(record.model, new Date().toISOString())!)!;
  }
  return picoToUsd(total);
}

/**
 * The cap, plus the estimates' error of eight calls in flight: the mock's answers differ from the
 * estimate by its thinking tokens (100-600 against 400 assumed), a quarter of a cent at most.
 * Before reservations, calls in flight were whole calls: $1.5 and more here.
 */
const BOUND_USD = 1 + 8 * 0.0025;

async function spendOf(out: string): Promise<{ spendUsd: number; maxCallUsd: number; lines: number }> {
  const files = await readdir(join(out, 'ledger'));
  const entries = (await Promise.all(files.map((file) => readFile(join(out, 'ledger', file), 'utf8'))))
    .join('')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LedgerEntry);
  let total = 0n;
  let max = 0n;
  for (const entry of entries) {
    const cost = billedCostPico(geminiBilling(entry.usageMetadata ?? {}), prices.priceOf(entry.model, entry.ts)!)!;
    total += cost;
    if (cost > max) max = cost;
  }
  return { spendUsd: picoToUsd(total), maxCallUsd: picoToUsd(max), lines: entries.length };
}

describe('budget caps', () => {
  it('in-process at concurrency 8: the mock bills at most the $1 cap to within the estimates, the rest wait over budget, a higher cap finishes them', async () => {
    const csv = await writeCsv('local');
    const out = join(dir, 'local-out');
    const env = { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url };
    const first = await runInProcess(['run', csv, '--out', out, '--budget-usd', '1', '--concurrency', '8', '--plain'], env);
    expect(first.code).toBe(1);
    expect(first.stdout).toMatch(/over budget: \d+ row\(s\) not started, spent \$0\.\d+ of a \$1\.00 budget/);
    const billed = await billedByMock('local');
    const { spendUsd, maxCallUsd, lines } = await spendOf(out);
    expect(billed).toBeLessThanOrEqual(BOUND_USD);
    // The cap is used, not left half spent: no room is left for another call.
    expect(billed).toBeGreaterThan(1 - maxCallUsd - 0.01);
    expect(Math.abs(spendUsd - billed)).toBeLessThan(1e-9);
    expect(lines).toBeLessThan(40);
    expect(first.stdout).not.toContain('failed rows:');

    const second = await runInProcess(['run', csv, '--out', out, '--budget-usd', '10', '--plain'], env);
    expect(second.code).toBe(0);
    expect((await readdir(join(out, 'local'))).filter(isSidecar)).toHaveLength(40);
    expect((await spendOf(out)).lines).toBe(40);
  });

  it('refuses rows of a model without a price when a budget is set, naming file, line and field; the priced rows run', async () => {
    const csv = join(dir, 'unpriced.csv');
    await writeFile(csv, ['id,prompt,model', 'p1,priced one,gemini-3-pro-image-preview', 'x1,made by a model with no price,gemini-9-image', 'p2,priced two,gemini-2.5-flash-image'].join('\n'));
    const out = join(dir, 'unpriced-out');
    const env = { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url };
    const capped = await runInProcess(['run', csv, '--out', out, '--budget-usd', '5', '--plain'], env);
    expect(capped.code).toBe(1);
    expect(capped.stdout + capped.stderr).toMatch(/unpriced\.csv:3: model: gemini-9-image has no price, so a budget cannot be kept for it/);
    expect((await spendOf(out)).lines).toBe(2);
    const strict = await runInProcess(['run', csv, '--out', join(dir, 'unpriced-strict'), '--budget-usd', '5', '--strict', '--plain'], env);
    expect(strict.code).toBe(2);
    expect(strict.stdout + strict.stderr).toContain('unpriced.csv:3: model');

    // Without a budget the row runs, and its answer is never shown as $0 in silence.
    const open = await runInProcess(['run', csv, '--out', join(dir, 'unpriced-open'), '--plain'], env);
    expect(open.code, open.stderr).toBe(0);
    expect(open.stdout).toMatch(/spend \$\d+\.\d{4} \+ 1 unpriced/);
    expect(open.stdout).toContain('NO PRICE for model "gemini-9-image"');
  });

  it('two workers x 4 in flight: one spend counter in Redis, the mock bills at most the $1 cap to within the estimates, rows wait over budget, raising the cap finishes them', async () => {
    const prefix = uniquePrefix('budget');
    prefixes.push(prefix);
    const csv = await writeCsv('queued');
    const out = join(dir, 'queued-out');
    const env = { REDIS_URL: redisUrl, TOKENHOT_QUEUE_PREFIX: prefix, TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: out };
    expect((await runInProcess(['enqueue', csv, '--batch', 'capped', '--budget-usd', '1'], env)).code).toBe(0);

    const work = (): CliProcess => {
      const process = startCli(['work', '--until-drained', '--concurrency', '4'], env);
      processes.push(process);
      return process;
    };
    const [a, b] = await Promise.all([work().done, work().done]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);

    const billed = await billedByMock('queued');
    const { spendUsd, maxCallUsd, lines } = await spendOf(out);
    expect(billed).toBeLessThanOrEqual(BOUND_USD);
    expect(billed).toBeGreaterThan(1 - maxCallUsd - 0.01);
    expect(Math.abs(spendUsd - billed)).toBeLessThan(1e-9);
    const status = JSON.parse((await runInProcess(['status', '--format', 'json'], env)).stdout) as {
      batches: { done: number; failed: number; overBudget: number; spendUsd: number; budgetUsd: number }[];
    };
    const batch = status.batches[0]!;
    expect(batch.failed).toBe(0);
    expect(batch.done).toBe(lines);
    expect(batch.overBudget).toBe(40 - lines);
    expect(batch.budgetUsd).toBe(1);
    // The Redis counter is the ledger's spend, exactly (integer picodollars on both sides).
    expect(Math.abs(batch.spendUsd - spendUsd)).toBeLessThan(1e-9);
    expect((await runInProcess(['status'], env)).stdout).toContain('is OVER BUDGET');
    expect((await runInProcess(['status', '--batch', 'caped'], env)).stdout).toContain('(no batch named caped in this queue; its batches: capped)');
    const report = await runInProcess(['report', '--batch', 'capped'], env);
    expect(report.stdout).toMatch(/batch capped is OVER BUDGET: spent \$0\.\d+ of a \$1\.00 budget; \d+ row\(s\) wait/);

    const raised = await runInProcess(['budget', 'capped', '--usd', '10'], env);
    expect(raised.code).toBe(0);
    expect(raised.stdout).toContain(`${40 - lines} parked row(s) set going again`);
    const again = await work().done;
    expect(again.code, again.stderr).toBe(0);
    expect((await spendOf(out)).lines).toBe(40);
    expect((await readdir(join(out, 'capped'))).filter(isSidecar)).toHaveLength(40);
  });

  it('a worker killed mid-call leaves no budget held: its jobs come back and run, with the row that was waiting', async () => {
    const prefix = uniquePrefix('budget-kill');
    prefixes.push(prefix);
    const csv = join(dir, 'killed.csv');
    await writeFile(csv, ['id,prompt,model,image_size', ...[1, 2, 3].map((i) => `k${i},"budget row ${i} for killed",gemini-3-pro-image-preview,2K`)].join('\n'));
    const out = join(dir, 'killed-out');
    const env = { REDIS_URL: redisUrl, TOKENHOT_QUEUE_PREFIX: prefix, TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: out };
    // Room for three calls' estimates ($0.14 each), not four.
    expect((await runInProcess(['enqueue', csv, '--batch', 'killed', '--budget-usd', '0.45'], env)).code).toBe(0);
    const fastLocks = ['--lock-duration', '1000', '--stalled-interval', '300', '--no-catalog'];

    const redis = new Redis(redisUrl);
    await fetch(`${mock.url}/__mock/hold`, { method: 'POST' });
    try {
      const first = startCli(['work', '--concurrency', '2', ...fastLocks], env);
      processes.push(first);
      // Two calls under way, their estimates held in Redis; then the worker dies without a word.
      const deadline = Date.now() + 20_000;
      while ((await redis.hlen(`${prefix}:tokenhot:batch:killed:reserved-pico`)) < 2) {
        if (Date.now() > deadline) throw new Error(`no calls under way: ${first.stderr()}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      first.child.kill('SIGKILL');
      await first.done;
    } finally {
      await fetch(`${mock.url}/__mock/release`, { method: 'POST' });
      redis.disconnect();
    }

    const second = startCli(['work', '--until-drained', '--concurrency', '1', ...fastLocks], env);
    processes.push(second);
    const result = await second.done;
    expect(result.code, result.stderr).toBe(0);
    const status = JSON.parse((await runInProcess(['status', '--format', 'json'], env)).stdout) as { batches: { done: number; overBudget: number }[] };
    expect(status.batches[0]).toMatchObject({ done: 3, overBudget: 0 });
    expect(await billedByMock('killed')).toBeLessThanOrEqual(0.45);
  });
});
