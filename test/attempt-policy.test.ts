/**
 * The attempt policy and the one-row step, in this process: a local run (`runLocal`) against a
 * provider scripted per row, with the real output store and ledger on disk. What the endpoint's
 * answers mean (which status is which error kind) is tested per provider; the CLI over HTTP
 * against the mock process in run-local.test.ts and the queue tests.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PriceTable } from '../src/cost/pricing.js';
import type { LedgerEntry } from '../src/core/types.js';
import { runLocal, type LocalRunOptions, type RunEvent, type RunSummary } from '../src/local/runner.js';
import { Ledger, readLedger } from '../src/output/ledger.js';
import { OutputStore } from '../src/output/storage.js';
import type { Sidecar } from '../src/run/generate.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../src/run/retry-policy.js';
import { blocked, fails, image, problem, ScriptedProvider, stepsById, unsaved, type Script } from './helpers/scripted-provider.js';

/** The default policy with waits short enough for a test. */
const POLICY: RetryPolicy = { ...DEFAULT_RETRY_POLICY, attempts: 3, baseDelayMs: 5, maxDelayMs: 20, defaultRateLimitMs: 80, maxRateLimitWaits: 4 };
const MODEL = 'gemini-2.5-flash-image';
const BATCH = 'rows';

const rateLimited = (retryAfterMs?: number, extra: { perDay?: boolean; namedQuota?: number } = {}) =>
  fails('rateLimited', 'rate limited (HTTP 429 RESOURCE_EXHAUSTED)', { status: 429, retryAfterMs, ...extra });
const unavailable = () => fails('transient', 'the endpoint failed (HTTP 503 UNAVAILABLE)', { status: 503 });

let dir: string;
let ledger: Ledger;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'thb-attempts-'));
  ledger = new Ledger(dir, { durable: false });
});
afterEach(async () => {
  await ledger.close();
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  summary: RunSummary;
  events: RunEvent[];
}

function csvLine(spec: string): string {
  const [id, model = MODEL] = spec.split(':');
  return `${id},prompt of ${id},${model}`;
}

/** Runs rows (`id` or `id:model`) through `provider`, against this test's folder. */
async function run(rows: string[], provider: ScriptedProvider, options: Partial<LocalRunOptions> = {}, runLedger = ledger): Promise<Run> {
  const csvPath = join(dir, 'rows.csv');
  await writeFile(csvPath, ['id,prompt,model', ...rows.map(csvLine)].join('\n'));
  const events: RunEvent[] = [];
  const context = { provider, store: new OutputStore(dir, { durable: false }), ledger: runLedger, prices: new PriceTable() };
  const summary = await runLocal({ csvPath, batch: BATCH, defaults: { model: MODEL }, concurrency: 1, retry: POLICY, onEvent: (event) => events.push(event), ...options }, context);
  return { summary, events };
}

async function ledgerLines(): Promise<LedgerEntry[]> {
  const lines: LedgerEntry[] = [];
  for await (const entry of readLedger(dir)) lines.push(entry);
  return lines;
}

async function sidecar(id: string): Promise<Sidecar> {
  return JSON.parse(await readFile(join(dir, BATCH, `${id}.json`), 'utf8')) as Sidecar;
}

const reasonOf = (summary: RunSummary, id: string): string | undefined => summary.failed.find((row) => row.id === id)?.reason;

describe('transient errors', () => {
  it('are tried again after a backoff, up to the attempts; the answer that comes is billed once, at its attempt', async () => {
    const provider = new ScriptedProvider(stepsById({ flaky: [unavailable(), unavailable()], broken: [unavailable(), unavailable(), unavailable(), image()] }));
    const { summary, events } = await run(['flaky', 'broken'], provider);
    expect(summary.done).toBe(1);
    expect(provider.callsFor('flaky')).toHaveLength(3);
    expect(events.filter((event) => event.type === 'retry' && event.row.id === 'flaky').map((event) => (event as { attempt: number }).attempt)).toEqual([1, 2]);
    // Attempts used up: failed, saying so, and never billed.
    expect(provider.callsFor('broken')).toHaveLength(3);
    expect(reasonOf(summary, 'broken')).toBe('the endpoint failed (HTTP 503 UNAVAILABLE) (gave up after 3 attempts)');
    expect(await ledgerLines()).toEqual([expect.objectContaining({ rowId: 'flaky', attempt: 3, outcome: 'done' })]);
    // No sidecar: a re-run tries the row again.
    expect(existsSync(join(dir, BATCH, 'broken.json'))).toBe(false);
  });

  it('an answer billed but not saved is in the ledger, and the row is tried again (and billed again)', async () => {
    const provider = new ScriptedProvider(stepsById({ s: [unsaved()] }));
    const { summary } = await run(['s'], provider);
    expect(summary.done).toBe(1);
    expect((await ledgerLines()).map((line) => [line.attempt, line.outcome])).toEqual([
      [1, 'failed'],
      [2, 'done'],
    ]);
  });
});

describe('429s', () => {
  it('use no attempt: the row waits the delay the answer names, and no other call starts meanwhile', async () => {
    const provider = new ScriptedProvider(stepsById({ q: [rateLimited(150), rateLimited(150), rateLimited(150), rateLimited(150)], r1: [image(100)] }));
    const { summary, events } = await run(['q', 'r1', 'r2'], provider, { concurrency: 2 });
    expect(summary.done).toBe(3);
    // Four 429s, more than the 3 attempts, and still done on its first attempt.
    expect(provider.callsFor('q')).toHaveLength(5);
    expect((await ledgerLines()).find((line) => line.rowId === 'q')).toMatchObject({ attempt: 1, outcome: 'done' });
    expect(events.filter((event) => event.type === 'rateLimited')).toHaveLength(4);
    // Each 429 closed the gate for 150 ms: no call of any row started in that time, but for one
    // already past the gate when the 429 came (it starts within a moment; it is not called back).
    for (const refused of provider.callsFor('q').slice(0, 4)) {
      const waits = provider.startedAfter(refused).map((call) => call.at - refused.endedAt!);
      expect(waits.filter((wait) => wait > 50 && wait < 145), 'ms after a 429').toEqual([]);
      expect(Math.max(...waits)).toBeGreaterThanOrEqual(145);
    }
  });

  it('one that names no delay waits the policy\'s default', async () => {
    const provider = new ScriptedProvider(stepsById({ q: [rateLimited()] }));
    await run(['q'], provider);
    const [first, second] = provider.callsFor('q');
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(POLICY.defaultRateLimitMs - 5);
  });

  it('a provider that never lets up: the row fails after the policy\'s cap of waits, saying so', async () => {
    // Rows that went through first, so that the pace learned from the 429s is not near zero.
    const quick = Array.from({ length: 12 }, (_, i) => `ok${i}`);
    const provider = new ScriptedProvider((row) => (row.id === 'stubborn' ? rateLimited(1) : undefined));
    const { summary } = await run([...quick, 'stubborn'], provider, { concurrency: 4 });
    expect(summary.done).toBe(12);
    expect(provider.callsFor('stubborn')).toHaveLength(POLICY.maxRateLimitWaits + 1);
    expect(reasonOf(summary, 'stubborn')).toBe('still rate limited after 4 waits (rate limited (HTTP 429 RESOURCE_EXHAUSTED))');
    expect(await ledgerLines()).toHaveLength(12);
  });

  it('a quota the 429 names (calls per second) caps the pace from then on', async () => {
    // Rows that went through first: a pace learned from a lone refused call would be near zero.
    const quick = Array.from({ length: 8 }, (_, i) => `ok${i}`);
    const provider = new ScriptedProvider(stepsById({ a: [rateLimited(0, { namedQuota: 20 })] }));
    const { summary } = await run([...quick, 'a', 'b', 'c', 'd'], provider);
    expect(summary.done).toBe(12);
    const starts = provider.startedAfter(provider.callsFor('a')[0]!).map((call) => call.at);
    expect(starts).toHaveLength(4);
    // 20 a second: the four starts take at least three paces of 50 ms. Each start may come late
    // on a loaded machine and the next on time, so single gaps can be shorter; without the cap
    // the four start within a few ms.
    expect(starts.at(-1)! - starts[0]!).toBeGreaterThanOrEqual(100);
  });

  it('a per-day quota stops the run: no row is called after it, and the rows left are not run', async () => {
    const provider = new ScriptedProvider(stepsById({ p: [fails('rateLimited', 'daily quota exhausted (HTTP 429 RESOURCE_EXHAUSTED)', { status: 429, perDay: true })] }));
    const { summary } = await run(['ok', 'p', 'x', 'y'], provider);
    expect(summary).toMatchObject({ done: 1, failed: [], notRun: 3, stopReason: 'daily quota exhausted (HTTP 429 RESOURCE_EXHAUSTED)' });
    expect(provider.calls.map((call) => call.rowId)).toEqual(['ok', 'p']);
  });
});

describe('answers that fail a row for good', () => {
  it('a billed answer without an image fails the row once: in the ledger, not asked again by a re-run, unless --retry-failed', async () => {
    const script: Script = stepsById({ odd: [problem('candidates[0].content.parts is null')], blocked: [blocked(), blocked()] });
    const provider = new ScriptedProvider(script);
    const first = await run(['odd', 'blocked'], provider);
    expect(first.summary.failed).toEqual([
      { id: 'odd', line: 2, reason: 'no image (candidates[0].content.parts is null)' },
      { id: 'blocked', line: 3, reason: 'prompt blocked (PROHIBITED_CONTENT)' },
    ]);
    expect(provider.calls).toHaveLength(2);
    expect((await ledgerLines()).map((line) => [line.rowId, line.outcome])).toEqual([
      ['odd', 'failed'],
      ['blocked', 'failed'],
    ]);
    expect(await sidecar('odd')).toMatchObject({ status: 'failed', provider: 'gemini', usageMetadata: { promptTokenCount: 10 } });

    const again = await run(['odd', 'blocked'], provider);
    expect(again.summary.alreadyFailed.map((row) => row.id)).toEqual(['odd', 'blocked']);
    expect(provider.calls).toHaveLength(2);

    const retried = await run(['odd', 'blocked'], provider, { retryFailed: true });
    expect(retried.summary.done).toBe(1);
    expect(provider.calls.map((call) => call.rowId)).toEqual(['odd', 'blocked', 'odd', 'blocked']);
  });

  it('a refusal that was not billed fails the row without a ledger line, and a re-run tries it again', async () => {
    const provider = new ScriptedProvider(stepsById({ refused: [fails('rowFailed', 'the request was refused (HTTP 400 INVALID_ARGUMENT)', { status: 400 })] }));
    const first = await run(['refused', 'fine'], provider);
    expect(first.summary.done).toBe(1);
    expect(reasonOf(first.summary, 'refused')).toBe('the request was refused (HTTP 400 INVALID_ARGUMENT)');
    expect(await sidecar('refused')).toMatchObject({ status: 'failed', costUsd: 0 });
    expect((await sidecar('refused')).billing).toBeUndefined();
    expect((await ledgerLines()).map((line) => line.rowId)).toEqual(['fine']);

    const second = await run(['refused', 'fine'], provider);
    expect(second.summary).toMatchObject({ done: 1, alreadyDone: 1, failed: [] });
    expect(provider.callsFor('refused')).toHaveLength(2);
    expect(provider.callsFor('fine')).toHaveLength(1);
  });

  it('rows of a model the endpoint does not know: after 3 refused in a row its other rows are not sent; other models go on', async () => {
    const unknown = 'gemini-4-pro-image';
    const rows = Array.from({ length: 12 }, (_, i) => (i % 4 === 3 ? `m${i}` : `m${i}:${unknown}`));
    const provider = new ScriptedProvider((row) =>
      row.model === unknown ? fails('rowFailed', 'the endpoint does not know this model (HTTP 404 NOT_FOUND)', { status: 404, modelNotFound: true }) : undefined,
    );
    const { summary } = await run(rows, provider);
    expect(provider.calls.filter((call) => call.model === unknown)).toHaveLength(3);
    expect(summary.done).toBe(3);
    expect(summary.failed).toHaveLength(9);
    expect(reasonOf(summary, 'm10')).toBe(
      `not sent: 3 rows of ${unknown} in a row were refused as unknown to the endpoint (the endpoint does not know this model (HTTP 404 NOT_FOUND)); check the model id`,
    );
  });
});

describe('errors that stop the run', () => {
  it('a fatal error: calls in flight finish and are saved, no new row starts, and a re-run does the rest', async () => {
    const provider = new ScriptedProvider(stepsById({ slow: [image(80)], bad: [fails('fatal', 'the API key was refused: check TOKENHOT_API_KEY (HTTP 401)', { status: 401 })] }));
    const { summary } = await run(['slow', 'bad', 'c', 'd'], provider, { concurrency: 2 });
    expect(summary).toMatchObject({ done: 1, failed: [], notRun: 3, stopReason: 'the API key was refused: check TOKENHOT_API_KEY (HTTP 401)' });
    expect(provider.calls.map((call) => call.rowId).sort()).toEqual(['bad', 'slow']);

    const again = await run(['slow', 'bad', 'c', 'd'], new ScriptedProvider());
    expect(again.summary).toMatchObject({ done: 3, alreadyDone: 1, notRun: 0 });
  });

  it('an endpoint that cannot be reached: after 3 rows in a row gave up on it, the run stops', async () => {
    const provider = new ScriptedProvider(() => fails('transient', 'connection failed (ECONNREFUSED)', { unreachable: true }));
    const rows = Array.from({ length: 10 }, (_, i) => `u${i}`);
    const { summary } = await run(rows, provider, { retry: { ...POLICY, attempts: 2 } });
    expect(summary.failed.map((row) => row.id)).toEqual(['u0', 'u1', 'u2']);
    expect(summary.notRun).toBe(7);
    expect(summary.stopReason).toMatch(/^the endpoint cannot be reached: 3 rows in a row gave up on connection failed \(ECONNREFUSED\)/);
    expect(provider.calls).toHaveLength(6);
  });

  it('a ledger that cannot be written: the run stops at once, the answer asked for once, nothing unrecorded asked again', async () => {
    const blockedDir = join(dir, 'no-ledger');
    await writeFile(blockedDir, 'a file where the output folder should be');
    const broken = new Ledger(blockedDir, { durable: false });
    const provider = new ScriptedProvider();
    try {
      const { summary } = await run(['a', 'b', 'c'], provider, { retry: { ...POLICY, attempts: 3 } }, broken);
      expect(summary.stopReason).toMatch(/^cannot write the ledger /);
      expect(summary).toMatchObject({ done: 0, notRun: 3 });
      expect(provider.calls).toHaveLength(1);
    } finally {
      await broken.close().catch(() => undefined);
    }
  });
});
