/**
 * Budget caps stop spending: in-process and across two workers sharing one Redis counter.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { geminiTokenCounts } from '../src/gemini/usage.js';
import { costPico, picoToUsd, PriceTable } from '../src/pricing.js';
import type { LedgerEntry } from '../src/types.js';
import { runCli, startCli, startMockProcess, type CliProcess, type MockProcess } from './helpers/processes.js';
import { removePrefix, uniquePrefix } from './helpers/redis.js';

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

/** 40 rows of the pro model: about $5.6 at list prices. */
async function writeCsv(name: string): Promise<string> {
  const path = join(dir, `${name}.csv`);
  const rows = Array.from({ length: 40 }, (_, i) => `b${i},"budget row ${i} for ${name}",gemini-3-pro-image-preview`);
  await writeFile(path, ['id,prompt,model', ...rows].join('\n'));
  return path;
}

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
    const cost = costPico(geminiTokenCounts(entry.usageMetadata), prices.priceOf(entry.model, entry.ts)!);
    total += cost;
    if (cost > max) max = cost;
  }
  return { spendUsd: picoToUsd(total), maxCallUsd: picoToUsd(max), lines: entries.length };
}

describe('budget caps', () => {
  it('in-process: stops at $1 plus the calls in flight, the rest wait over budget, a higher cap finishes them', async () => {
    const csv = await writeCsv('local');
    const out = join(dir, 'local-out');
    const env = { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url };
    const first = await runCli(['run', csv, '--out', out, '--budget-usd', '1', '--concurrency', '4', '--plain'], env);
    expect(first.code).toBe(1);
    expect(first.stdout).toMatch(/over budget: \d+ row\(s\) not started, spent \$1\.\d+ of a \$1\.00 budget/);
    const { spendUsd, maxCallUsd, lines } = await spendOf(out);
    expect(spendUsd).toBeGreaterThanOrEqual(1);
    expect(spendUsd).toBeLessThanOrEqual(1 + 4 * maxCallUsd);
    expect(lines).toBeLessThan(40);
    expect(first.stdout).not.toContain('failed rows:');

    const second = await runCli(['run', csv, '--out', out, '--budget-usd', '10', '--plain'], env);
    expect(second.code).toBe(0);
    expect((await readdir(join(out, 'local'))).filter((file) => file.endsWith('.json'))).toHaveLength(40);
    expect((await spendOf(out)).lines).toBe(40);
  });

  it('refuses rows of a model without a price when a budget is set, naming file, line and field; the priced rows run', async () => {
    const csv = join(dir, 'unpriced.csv');
    await writeFile(csv, ['id,prompt,model', 'p1,priced one,gemini-3-pro-image-preview', 'x1,made by a model with no price,gemini-9-image', 'p2,priced two,gemini-2.5-flash-image'].join('\n'));
    const out = join(dir, 'unpriced-out');
    const env = { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url };
    const capped = await runCli(['run', csv, '--out', out, '--budget-usd', '5', '--plain'], env);
    expect(capped.code).toBe(1);
    expect(capped.stdout + capped.stderr).toMatch(/unpriced\.csv:3: model: gemini-9-image has no price, so a budget cannot be kept for it/);
    expect((await spendOf(out)).lines).toBe(2);
    const strict = await runCli(['run', csv, '--out', join(dir, 'unpriced-strict'), '--budget-usd', '5', '--strict', '--plain'], env);
    expect(strict.code).toBe(2);
    expect(strict.stdout + strict.stderr).toContain('unpriced.csv:3: model');

    // Without a budget the row runs, and its answer is never shown as $0 in silence.
    const open = await runCli(['run', csv, '--out', join(dir, 'unpriced-open'), '--plain'], env);
    expect(open.code, open.stderr).toBe(0);
    expect(open.stdout).toMatch(/spend \$\d+\.\d{4} \+ 1 unpriced/);
    expect(open.stdout).toContain('NO PRICE for model "gemini-9-image"');
  });

  it('two workers: one spend counter in Redis, spend stops at $1 plus the calls in flight, rows wait over budget, raising the cap finishes them', async () => {
    const prefix = uniquePrefix('budget');
    prefixes.push(prefix);
    const csv = await writeCsv('queued');
    const out = join(dir, 'queued-out');
    const env = { REDIS_URL: redisUrl, TOKENHOT_QUEUE_PREFIX: prefix, TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: out };
    expect((await runCli(['enqueue', csv, '--batch', 'capped', '--budget-usd', '1'], env)).code).toBe(0);

    const work = (): CliProcess => {
      const process = startCli(['work', '--until-drained', '--concurrency', '3'], env);
      processes.push(process);
      return process;
    };
    const [a, b] = await Promise.all([work().done, work().done]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);

    const { spendUsd, maxCallUsd, lines } = await spendOf(out);
    expect(spendUsd).toBeGreaterThanOrEqual(1);
    // Six calls at most were in flight (two workers × three).
    expect(spendUsd).toBeLessThanOrEqual(1 + 6 * maxCallUsd);
    const status = JSON.parse((await runCli(['status', '--format', 'json'], env)).stdout) as {
      batches: { done: number; failed: number; overBudget: number; spendUsd: number; budgetUsd: number }[];
    };
    const batch = status.batches[0]!;
    expect(batch.failed).toBe(0);
    expect(batch.done).toBe(lines);
    expect(batch.overBudget).toBe(40 - lines);
    expect(batch.budgetUsd).toBe(1);
    // The Redis counter is the ledger's spend, exactly (integer picodollars on both sides).
    expect(Math.abs(batch.spendUsd - spendUsd)).toBeLessThan(1e-9);
    expect((await runCli(['status'], env)).stdout).toContain('is OVER BUDGET');
    expect((await runCli(['status', '--batch', 'caped'], env)).stdout).toContain('(no batch named caped in this queue; its batches: capped)');
    const report = await runCli(['report', '--batch', 'capped'], env);
    expect(report.stdout).toMatch(/batch capped is OVER BUDGET: spent \$1\.\d+ of a \$1\.00 budget; \d+ row\(s\) wait/);

    const raised = await runCli(['budget', 'capped', '--usd', '10'], env);
    expect(raised.code).toBe(0);
    expect(raised.stdout).toContain(`${40 - lines} parked row(s) set going again`);
    const again = await work().done;
    expect(again.code, again.stderr).toBe(0);
    expect((await spendOf(out)).lines).toBe(40);
    expect((await readdir(join(out, 'capped'))).filter((file) => file.endsWith('.json'))).toHaveLength(40);
  });
});
