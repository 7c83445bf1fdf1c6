/**
 * One CSV mixing all ten models of both providers, against a `mock-server` process serving both,
 * run in-process (`run`) and in queue mode (`enqueue`, then two `work` processes): each row
 * reaches its provider, images are the bytes the mock sent (base64 or link), the ledger holds
 * one line per billed answer naming its provider, refusals are listed and unbilled, a link broken
 * twice costs one generation, an expired link one failed row and one ledger line, and
 * `report --by provider,model` equals the mock's bill at the list prices to 1e-9 USD.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { LedgerEntry } from '../src/core/types.js';
import { mockBill, usd } from './helpers/mock-bill.js';
import { startMockProcess, type CliProcess, type MockProcess, type MockRecord, runCli } from './helpers/processes.js';
import { removePrefix, uniquePrefix } from './helpers/redis.js';
import { startSharingWorkers } from './helpers/shared-workers.js';
import { runInProcess } from './helpers/cli-in-process.js';

const KEY = 'sk-both-providers-5e1f0c';
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

const ROWS = [
  // id, model, aspect_ratio, size, quality, prompt
  ['gem-pro', 'gemini-3-pro-image-preview', '16:9', '', '', 'a lighthouse, gemini'],
  ['gem-31', 'gemini-3.1-flash-image-preview', '1:1', '', '', 'a lighthouse, gemini 3.1'],
  ['gem-flash', 'gemini-2.5-flash-image', '', '', '', 'a lighthouse, flash'],
  ['sd-b64', 'doubao-seedream-4-5-251128', '16:9', '', '', 'a lighthouse, seedream'],
  ['sd-link', 'doubao-seedream-4-0-250828', '', '', '', 'a lighthouse, seedream link [mock:as-url]'],
  ['sd-cut', 'doubao-seedream-5-0-260128', '3:2', '', '', 'a lighthouse, flaky link [mock:as-url][mock:link-cutx2]'],
  ['gpt', 'gpt-image-2', '', '2048x1152', 'low', 'a lighthouse, gpt'],
  ['gpt15', 'gpt-image-1.5', '3:2', '', 'medium', 'a lighthouse, gpt 1.5'],
  ['dalle', 'dall-e-3', '9:16', '', 'hd', 'a lighthouse, dall-e [mock:as-url]'],
  ['dalle2', 'dall-e-2', '', '512x512', '', 'a lighthouse, dall-e 2'],
  ['blocked', 'gemini-3-pro-image-preview', '1:1', '', '', 'a lighthouse, blocked [mock:blocked]'],
  ['refused', 'doubao-seedream-4-5-251128', '', '', '', 'a lighthouse, refused [mock:refused]'],
  ['expired', 'dall-e-3', '', '', '', 'a lighthouse, expired link [mock:as-url][mock:link-expired]'],
] as const;
const MADE = ROWS.slice(0, 10);
const REFUSED_UNBILLED = ['refused'];

describe('rows for both providers, every model', () => {
  let mock: MockProcess;
  let dir: string;
  const prefixes: string[] = [];
  const workers: CliProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'thb-both-'));
    mock = await startMockProcess(['--api-key', KEY]);
  });
  afterAll(async () => {
    for (const worker of workers) if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
    await mock.stop();
    for (const prefix of prefixes) await removePrefix(inject('redisUrl'), prefix);
    await rm(dir, { recursive: true, force: true });
  });

  /** The CSV of one mode: the same rows, each prompt marked with the mode so the mock's log tells them apart. */
  async function writeRows(mode: string): Promise<{ csv: string; prompt: (id: string) => string }> {
    const prompt = (id: string): string => `${ROWS.find((row) => row[0] === id)![5]} (${mode})`;
    const csv = join(dir, `mixed-${mode}.csv`);
    await writeFile(csv, ['id,model,aspect_ratio,size,quality,prompt', ...ROWS.map((row) => [...row.slice(0, 5), `"${prompt(row[0])}"`].join(','))].join('\n'));
    return { csv, prompt };
  }

  /** What both modes must show, from the output folder and the mock's log. */
  async function checkOutputs(out: string, batch: string, prompt: (id: string) => string, logs: string): Promise<void> {
    const records = (await mock.requests()).filter((record) => ROWS.some((row) => record.prompt === prompt(row[0])));
    const byId = (id: string): MockRecord[] => records.filter((record) => record.prompt === prompt(id));
    // One generation per row: the link cut twice was downloaded again, never generated again.
    const asked = (id: string): string => `${id}: ${JSON.stringify(byId(id).map((record) => ({ seq: record.seq, status: record.status, kind: record.kind })))}\n${logs}`;
    for (const [id] of ROWS) expect(byId(id), asked(id)).toHaveLength(1);
    expect(byId('sd-cut')[0]).toMatchObject({ size: '2496x1664' });
    expect(byId('gpt')[0]).toMatchObject({ size: '2048x1152', quality: 'low' });
    expect(byId('dalle')[0]).toMatchObject({ size: '1024x1792', quality: 'hd' });

    // Images: byte for byte what the mock sent, inline or behind a link.
    for (const [id] of MADE) {
      const sidecar = JSON.parse(await readFile(join(out, batch, `${id}.json`), 'utf8')) as { images: { file: string }[] };
      expect(sidecar.images, id).toHaveLength(1);
      expect(sha256(await readFile(join(out, batch, sidecar.images[0]!.file))), id).toBe(byId(id)[0]!.images[0]!.sha256);
    }

    // The ledger: one line per billed answer (the refusal was not billed), naming its provider,
    // with the billing record the mock billed.
    const ledger = (await Promise.all((await readdir(join(out, 'ledger'))).map((file) => readFile(join(out, 'ledger', file), 'utf8'))))
      .flatMap((text) => text.split('\n').filter(Boolean))
      .map((line) => JSON.parse(line) as LedgerEntry);
    expect(ledger.map((entry) => entry.rowId).sort()).toEqual(ROWS.map((row) => row[0] as string).filter((id) => !REFUSED_UNBILLED.includes(id)).sort());
    for (const entry of ledger) {
      const row = ROWS.find((r) => r[0] === entry.rowId)!;
      expect(entry.provider).toBe(row[1].startsWith('gemini') ? 'gemini' : 'openai-images');
      if (entry.provider === 'openai-images') expect(entry.billing).toEqual(byId(row[0])[0]!.billing);
    }
    expect(ledger.find((entry) => entry.rowId === 'expired')).toMatchObject({ outcome: 'failed', images: 0, billing: { images: { count: 1, unit: '1024x1024/standard' } } });
    expect(ledger.find((entry) => entry.rowId === 'dalle')).toMatchObject({ outcome: 'done', usage: {} });

    // The report by provider and model is the mock's bill at the list prices, to 1e-9 USD.
    const report = await runInProcess(['report', '--out', out, '--by', 'provider,model', '--format', 'json']);
    expect(report.code, report.stderr).toBe(0);
    const groups = (JSON.parse(report.stdout) as { groups: { key: { provider: string; model: string }; costUsd: number; unpricedRequests: number }[] }).groups;
    const bill = mockBill(records);
    expect(bill.size).toBe(10);
    expect(groups.map((g) => `${g.key.provider}/${g.key.model}`).sort()).toEqual([...bill.keys()].sort());
    for (const g of groups) {
      expect(g.unpricedRequests, g.key.model).toBe(0);
      expect(Math.abs(g.costUsd - usd(bill.get(`${g.key.provider}/${g.key.model}`)!)), g.key.model).toBeLessThan(1e-9);
    }
  }

  it('in-process: each row goes to its provider; images, ledger, failures and the report are as the mock sent and billed', async () => {
    const { csv, prompt } = await writeRows('local');
    const out = join(dir, 'out-local');
    const result = await runCli(['run', csv, '--out', out, '--plain', '--concurrency', '4'], { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url });
    expect(result.stdout + result.stderr).not.toContain(KEY);
    expect(result.stdout + result.stderr).toContain('10 done, 3 failed');
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/refused \(line 13\): refused by moderation \(HTTP 400 InputTextSensitiveContentDetected: [^)]+/);
    expect(result.stdout).toMatch(/expired \(line 14\): no image \(image link [^ ]+ has expired or is gone \(HTTP 403\)/);
    expect(result.stdout).toMatch(/blocked \(line 12\): prompt blocked/);
    await checkOutputs(out, 'mixed-local', prompt, result.stdout + result.stderr);
  });

  it('queue mode, two workers: the same images, ledger, failures and bill', async () => {
    const { csv, prompt } = await writeRows('queue');
    const out = join(dir, 'out-queue');
    const prefix = uniquePrefix('both-providers');
    prefixes.push(prefix);
    const env = { REDIS_URL: inject('redisUrl'), TOKENHOT_QUEUE_PREFIX: prefix, TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: out };
    const enqueued = await runInProcess(['enqueue', csv, '--plain'], env);
    expect(enqueued.code, enqueued.stderr).toBe(0);
    // Answers held until both workers are up: each takes its first rows, so the batch is shared
    // however fast the first worker would have drained it alone.
    const started = await startSharingWorkers(mock, 2, ['--until-drained', '--no-catalog', '--plain', '--concurrency', '3'], env);
    workers.push(...started);
    const results = await Promise.all(started.map((worker) => worker.done));
    for (const result of results) {
      // 1 when this worker failed rows for good (the refusals), as `run` does.
      expect([0, 1], result.stderr).toContain(result.code);
      expect(result.stdout + result.stderr).not.toContain(KEY);
    }
    // Both workers took rows: the batch was shared, not run by one of them.
    const did = results.map((result) => Number((result.stdout + result.stderr).match(/this worker did (\d+) row/)?.[1] ?? 0));
    expect(did.every((n) => n > 0), did.join(' + ')).toBe(true);
    expect(did[0]! + did[1]!).toBe(ROWS.length);

    const status = await runInProcess(['status', '--batch', 'mixed-queue'], env);
    expect(status.stdout).toMatch(/mixed-queue\s+13\s+0\s+0\s+0\s+10\s+3\b/);
    expect(status.stdout).toMatch(/refused: refused by moderation \(HTTP 400 InputTextSensitiveContentDetected/);
    expect(status.stdout).toMatch(/expired: no image \(image link [^ ]+ has expired or is gone \(HTTP 403\)/);
    expect(status.stdout).toMatch(/blocked: prompt blocked/);
    await checkOutputs(out, 'mixed-queue', prompt, results.map((result) => result.stdout + result.stderr).join('\n--- next worker ---\n'));
  });
});
