/**
 * `tokenhot-batch run` in-process against a separate `mock-server` process, as a user points it
 * at a real URL: images byte-identical to what the endpoint sent, the ledger equal to what it
 * billed, failures listed, and a kill at any moment losing nothing. What the runner does after
 * each kind of answer (the attempt policy) is tested in process in attempt-policy.test.ts.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { geminiTokenCounts } from '../src/providers/gemini/usage.js';
import type { UsageMetadata } from '../src/core/types.js';
import { startCli, startMockProcess, type MockProcess, type MockRecord, runCli } from './helpers/processes.js';
import { freePort } from './helpers/redis.js';
import { isImageFile, isSidecar } from './helpers/output-files.js';
import { runInProcess } from './helpers/cli-in-process.js';

const KEY = 'test-key-9f2c1d';
const MODELS = ['gemini-3-pro-image-preview', 'gemini-3.1-flash-image-preview', 'gemini-2.5-flash-image'];
const PRICES: Record<string, [number, number, number]> = {
  'gemini-3-pro-image-preview': [2, 12, 120],
  'gemini-3.1-flash-image-preview': [0.5, 3, 60],
  'gemini-2.5-flash-image': [0.3, 2.5, 30],
};

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

interface CsvRow {
  id: string;
  prompt: string;
  model: string;
  tags?: string;
}

async function writeCsv(dir: string, rows: CsvRow[]): Promise<string> {
  const path = join(dir, 'rows.csv');
  const quote = (value: string): string => `"${value.replace(/"/g, '""')}"`;
  await writeFile(path, ['id,prompt,model,tags', ...rows.map((row) => [row.id, quote(row.prompt), row.model, row.tags ?? 'test;e2e'].join(','))].join('\n'));
  return path;
}

/** The final images the mock sent for each prompt, from its last billed answer. */
function sentImages(records: MockRecord[]): Map<string, string[]> {
  const byPrompt = new Map<string, string[]>();
  for (const record of records) if (record.status === 200 && record.kind === 'image') byPrompt.set(record.prompt, record.images.map((image) => image.sha256));
  return byPrompt;
}

describe('run in-process against a mock-server process', () => {
  let mock: MockProcess;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'thb-run-'));
    mock = await startMockProcess(['--api-key', KEY, '--latency-ms', '20', '--latency-jitter-ms', '60']);
  });
  afterAll(async () => {
    await mock.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('100 rows: byte-identical images, no thought image, failures listed, exit 1, report equal to what the mock billed', async () => {
    const rows: CsvRow[] = Array.from({ length: 100 }, (_, i) => {
      const model = MODELS[i % 3]!;
      let prompt = `product shot number ${i}, studio light`;
      if (i % 25 === 3) prompt += ' [mock:blocked]';
      // A Go gateway's blocked image, `"parts": null` with thinking billed: one call, one bill.
      else if (i % 50 === 32) prompt += ' [mock:no-image] [mock:gateway]';
      else if (i % 25 === 7) prompt += ' [mock:no-image]';
      else if (i % 40 === 21) prompt += ' [mock:gateway] [mock:signature=1MB]';
      // A few of each error the run waits out: how it waits (backoff, pace) is tested in process.
      else if (i % 50 === 11) prompt += ' [mock:503x1]';
      else if (i % 50 === 13) prompt += ' [mock:429x1] [mock:retry=0.3s]';
      else if (i % 50 === 15) prompt += ' [mock:cutx1]';
      else if (i % 30 === 17) prompt += ' [mock:two-images]';
      return { id: `p${String(i).padStart(3, '0')}`, prompt, model, tags: i % 2 === 0 ? 'red' : 'blue' };
    });
    const csv = await writeCsv(dir, rows);
    const out = join(dir, 'out');

    const result = await runCli(['run', csv, '--out', out, '--concurrency', '6', '--plain'], { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url });
    expect(result.stderr).not.toContain(KEY);
    expect(result.stdout).not.toContain(KEY);
    expect(result.code).toBe(1);

    const blocked = rows.filter((row) => row.prompt.includes('blocked'));
    const noImage = rows.filter((row) => row.prompt.includes('no-image'));
    expect(result.stdout).toContain(`${100 - blocked.length - noImage.length} done, ${blocked.length + noImage.length} failed`);
    for (const row of blocked) expect(result.stdout).toMatch(new RegExp(`${row.id} \\(line \\d+\\): prompt blocked \\(PROHIBITED_CONTENT\\)`));
    for (const row of noImage) {
      const reason = row.prompt.includes('gateway') ? 'no image \\(finishReason IMAGE_SAFETY\\): Unable to show' : 'no image \\(finishReason IMAGE_SAFETY\\)';
      expect(result.stdout).toMatch(new RegExp(`${row.id} \\(line \\d+\\): ${reason}`));
    }
    expect(noImage.filter((row) => row.prompt.includes('gateway'))).toHaveLength(2);

    const records = await mock.requests();
    // 503s were retried, 429s waited out: every row has exactly one billed answer.
    const billed = records.filter((record) => record.status === 200 && record.usageMetadata);
    expect(billed).toHaveLength(100);
    expect(records.filter((record) => record.status === 503)).toHaveLength(rows.filter((row) => row.prompt.includes('503x1')).length);
    expect(records.filter((record) => record.status === 429)).toHaveLength(rows.filter((row) => row.prompt.includes('429x1')).length);
    // A body cut short is a transient error: tried again, and nothing of it is left on disk.
    expect(records.filter((record) => record.kind === 'cut')).toHaveLength(rows.filter((row) => row.prompt.includes('cutx1')).length);

    // Images: exactly the final images the mock sent, byte for byte, and nothing else.
    const sent = sentImages(records);
    const batchDir = join(out, 'rows');
    const files = await readdir(batchDir);
    const imageFiles = files.filter(isImageFile);
    let expectedImages = 0;
    for (const row of rows) {
      const hashes = sent.get(row.prompt) ?? [];
      expectedImages += hashes.length;
      for (const [index, hash] of hashes.entries()) {
        const ext = row.model.includes('pro') ? 'jpg' : 'png';
        const file = index === 0 ? `${row.id}.${ext}` : `${row.id}-${index + 1}.${ext}`;
        expect(sha256(await readFile(join(batchDir, file))), file).toBe(hash);
      }
    }
    expect(imageFiles).toHaveLength(expectedImages);
    expect(records.some((record) => record.thoughtImages > 0)).toBe(true);
    expect(files.filter((file) => file.startsWith('.'))).toEqual([]);

    // The report equals, token for token and to 1e-9 dollars, what the mock billed, computed here
    // independently with the design page's rule, in total and per model and tag.
    const report = await runInProcess(['report', '--out', out, '--format', 'json', '--by', 'model,tag']);
    expect(report.code).toBe(0);
    type Sums = { requests: number; images: number; promptTokens: number; imageOutputTokens: number; textOutputTokens: number; thoughtsTokens: number; totalTokens: number; costUsd: number };
    const json = JSON.parse(report.stdout) as { totals: Sums & { failedRows: number }; groups: (Sums & { key: { model: string; tag: string } })[] };
    const empty = (): Sums => ({ requests: 0, images: 0, promptTokens: 0, imageOutputTokens: 0, textOutputTokens: 0, thoughtsTokens: 0, totalTokens: 0, costUsd: 0 });
    const total = empty();
    const perGroup = new Map<string, Sums>();
    const tagOf = new Map(rows.map((row) => [row.prompt, row.tags!]));
    for (const record of billed) {
      const counts = geminiTokenCounts(record.usageMetadata as UsageMetadata);
      const [input, text, image] = PRICES[record.model]!;
      const key = `${record.model}|${tagOf.get(record.prompt)}`;
      const group = perGroup.get(key) ?? empty();
      perGroup.set(key, group);
      for (const sums of [total, group]) {
        sums.requests += 1;
        sums.images += record.images.length;
        sums.promptTokens += counts.promptTokens;
        sums.imageOutputTokens += counts.imageOutputTokens;
        sums.textOutputTokens += counts.textOutputTokens;
        sums.thoughtsTokens += counts.thoughtsTokens;
        sums.totalTokens += counts.totalTokens;
        sums.costUsd += (counts.promptTokens * input + counts.imageOutputTokens * image + (counts.textOutputTokens + counts.thoughtsTokens) * text) / 1e6;
      }
    }
    const { costUsd, ...tokens } = total;
    expect(json.totals).toMatchObject(tokens);
    expect(json.totals.failedRows).toBe(blocked.length + noImage.length);
    expect(Math.abs(json.totals.costUsd - costUsd)).toBeLessThan(1e-9);
    expect(json.groups).toHaveLength(6);
    for (const group of json.groups) {
      const { costUsd: groupCost, ...groupTokens } = perGroup.get(`${group.key.model}|${group.key.tag}`)!;
      expect(group).toMatchObject(groupTokens);
      expect(Math.abs(group.costUsd - groupCost)).toBeLessThan(1e-9);
    }
  });

  it('a SIGKILL half-way loses nothing: the re-run asks for no finished row again and leaves no partial file', async () => {
    await mock.reset();
    const rows: CsvRow[] = Array.from({ length: 40 }, (_, i) => ({ id: `k${i}`, prompt: `kill test ${i} [mock:latency=150]`, model: MODELS[i % 3]! }));
    const csv = await writeCsv(dir, rows);
    const out = join(dir, 'killed');
    const env = { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url };
    const batchDir = join(out, 'rows');

    const first = startCli(['run', csv, '--out', out, '--concurrency', '4', '--plain'], env);
    // Kill it once some rows are finished and others are in flight.
    for (;;) {
      const finished = (await readdir(batchDir).catch(() => [] as string[])).filter(isSidecar).length;
      if (finished >= 12) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.signal).toBe('SIGKILL');

    const afterKill = await readdir(batchDir);
    const finished = new Set(afterKill.filter(isSidecar).map((file) => file.replace(/\.json$/, '')));
    expect(finished.size).toBeGreaterThanOrEqual(12);
    expect(finished.size).toBeLessThan(40);
    // Whatever is visible as an image is whole: it is exactly an image the mock sent.
    const sentBefore = new Set((await mock.requests()).flatMap((record) => record.images.map((image) => image.sha256)));
    for (const file of afterKill.filter(isImageFile)) {
      expect(sentBefore.has(sha256(await readFile(join(batchDir, file)))), file).toBe(true);
    }

    await mock.reset();
    const second = await runInProcess(['run', csv, '--out', out, '--concurrency', '4', '--plain'], env);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(`${finished.size} already done`);
    const asked = (await mock.requests()).map((record) => record.prompt);
    const askedIds = new Set(rows.filter((row) => asked.includes(row.prompt)).map((row) => row.id));
    for (const id of finished) expect(askedIds.has(id), `finished row ${id} asked again`).toBe(false);
    expect(askedIds.size).toBe(40 - finished.size);

    const files = await readdir(batchDir);
    expect(files.filter(isSidecar)).toHaveLength(40);
    expect(files.filter((file) => file.startsWith('.') || file.endsWith('.tmp'))).toEqual([]);
    expect(existsSync(join(batchDir, '.partial'))).toBe(false);

    // The ledger holds every billed answer of both runs, including any billed just before the kill.
    const ledgerLines = (await Promise.all((await readdir(join(out, 'ledger'))).map((file) => readFile(join(out, 'ledger', file), 'utf8'))))
      .join('')
      .split('\n')
      .filter(Boolean);
    expect(ledgerLines.length).toBeGreaterThanOrEqual(40);
  });

  it('Ctrl-C stops cleanly: calls in flight finish, no new row starts, exit 130, and the re-run finishes', async () => {
    await mock.reset();
    const rows: CsvRow[] = Array.from({ length: 30 }, (_, i) => ({ id: `c${i}`, prompt: `interrupt test ${i} [mock:latency=200]`, model: MODELS[0]! }));
    const csv = await writeCsv(dir, rows);
    const out = join(dir, 'interrupted');
    const env = { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url };
    const run = startCli(['run', csv, '--out', out, '--concurrency', '3', '--plain'], env);
    for (;;) {
      const finished = (await readdir(join(out, 'rows')).catch(() => [] as string[])).filter(isSidecar).length;
      if (finished >= 5) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    run.child.kill('SIGINT');
    const result = await run.done;
    expect(result.code).toBe(130);
    expect(result.stdout).toMatch(/stopped: interrupted/);
    const records = await mock.requests();
    const done = (await readdir(join(out, 'rows'))).filter(isSidecar);
    // Every call that was sent was let finish and saved.
    expect(records.filter((record) => record.status === 200)).toHaveLength(done.length);
    expect(done.length).toBeLessThan(30);

    const again = await runInProcess(['run', csv, '--out', out, '--plain'], env);
    expect(again.code).toBe(0);
    expect((await readdir(join(out, 'rows'))).filter(isSidecar)).toHaveLength(30);
  });

  it('Ctrl-C at a slow pace does not wait out the start slots of the rows waiting for them', async () => {
    const rows: CsvRow[] = Array.from({ length: 10 }, (_, i) => ({ id: `s${i}`, prompt: `slow pace ${i}`, model: MODELS[2]! }));
    const csv = await writeCsv(dir, rows);
    const out = join(dir, 'slow-pace');
    const run = startCli(['run', csv, '--out', out, '--concurrency', '4', '--rpm', '6', '--plain'], { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url });
    for (;;) {
      const finished = (await readdir(join(out, 'rows')).catch(() => [] as string[])).filter(isSidecar).length;
      if (finished >= 1) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const interruptedAt = Date.now();
    run.child.kill('SIGINT');
    const result = await run.done;
    expect(result.code).toBe(130);
    // The next slots were 10 s apart; the run ends without waiting for them.
    expect(Date.now() - interruptedAt).toBeLessThan(5_000);
  });

  it('an endpoint that cannot be reached stops the run with exit 2 after a few rows, not after every row', async () => {
    const rows: CsvRow[] = Array.from({ length: 30 }, (_, i) => ({ id: `u${i}`, prompt: `unreachable ${i}`, model: MODELS[2]! }));
    const csv = await writeCsv(dir, rows);
    const out = join(dir, 'unreachable');
    // A port nothing listens on: the connection is refused at once.
    const closedPort = await freePort();
    // One attempt a row: the backoffs between attempts are the attempt policy's, tested in process.
    const result = await runInProcess(['run', csv, '--out', out, '--plain', '--attempts', '1', '--concurrency', '4'], { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: `http://127.0.0.1:${closedPort}` });
    expect(result.code).toBe(2);
    expect(result.stdout + result.stderr).toMatch(/the endpoint cannot be reached: 3 rows in a row gave up on connection failed \(ECONNREFUSED/);
    const notRun = Number(/(\d+) not run/.exec(result.stdout)?.[1] ?? 0);
    expect(notRun).toBeGreaterThanOrEqual(20);
  });

  it('a re-run says which finished rows changed in the file since, and does not make them again', async () => {
    const first: CsvRow[] = [
      { id: 'same', prompt: 'a mug', model: MODELS[2]! },
      { id: 'edited', prompt: 'a teapot', model: MODELS[2]! },
    ];
    const csv = await writeCsv(dir, first);
    const out = join(dir, 'changed');
    const env = { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url };
    expect((await runInProcess(['run', csv, '--out', out, '--plain'], env)).code).toBe(0);
    await writeCsv(dir, [first[0]!, { ...first[1]!, prompt: 'a blue teapot' }]);
    const again = await runInProcess(['run', csv, '--out', out, '--plain'], env);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('2 already done');
    expect(again.stdout).toMatch(/finished before, but changed in the file since[^\n]*\n\s+edited \(line 3\)\n/);
    expect(again.stdout).not.toMatch(/^\s+same \(line 2\)$/m);
  });

  it('a wrong key stops the run with exit 2, names the cause, never the key, and leaves the rows for a re-run', async () => {
    const rows: CsvRow[] = Array.from({ length: 10 }, (_, i) => ({ id: `w${i}`, prompt: `wrong key ${i}`, model: MODELS[1]! }));
    const csv = await writeCsv(dir, rows);
    const out = join(dir, 'wrong-key');
    const wrongKey = 'sk-wrong-0123456789';
    const result = await runCli(['run', csv, '--out', out, '--plain'], { TOKENHOT_API_KEY: wrongKey, TOKENHOT_BASE_URL: mock.url });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('the API key was refused');
    expect(result.stdout + result.stderr).not.toContain(wrongKey);
    expect(existsSync(join(out, 'rows'))).toBe(false);
  });
});
