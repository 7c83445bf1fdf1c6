/**
 * `tokenhot-batch run` on one CSV mixing Gemini models and the images endpoint's, against a
 * `mock-server` process serving both: each row reaches its provider, images are the bytes the
 * mock sent (base64 or link), the ledger holds one line per billed answer naming its provider,
 * refusals are listed and unbilled, a link broken twice costs one generation, an expired link
 * one failed row and one ledger line.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerEntry } from '../src/core/types.js';
import { runCli, startMockProcess, type MockProcess } from './helpers/processes.js';

const KEY = 'sk-both-providers-5e1f0c';
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

const ROWS = [
  // id, model, aspect_ratio, size, quality, prompt
  ['gem-pro', 'gemini-3-pro-image-preview', '16:9', '', '', 'a lighthouse, gemini'],
  ['gem-flash', 'gemini-2.5-flash-image', '', '', '', 'a lighthouse, flash'],
  ['sd-b64', 'doubao-seedream-4-5-251128', '16:9', '', '', 'a lighthouse, seedream'],
  ['sd-link', 'doubao-seedream-4-0-250828', '', '', '', 'a lighthouse, seedream link [mock:as-url]'],
  ['sd-cut', 'doubao-seedream-5-0-260128', '3:2', '', '', 'a lighthouse, flaky link [mock:as-url][mock:link-cutx2]'],
  ['gpt', 'gpt-image-2', '', '2048x1152', 'low', 'a lighthouse, gpt'],
  ['dalle', 'dall-e-3', '9:16', '', 'hd', 'a lighthouse, dall-e [mock:as-url]'],
  ['refused', 'doubao-seedream-4-5-251128', '', '', '', 'a lighthouse, refused [mock:refused]'],
  ['expired', 'dall-e-3', '', '', '', 'a lighthouse, expired link [mock:as-url][mock:link-expired]'],
] as const;

describe('run with rows for both providers', () => {
  let mock: MockProcess;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'thb-both-'));
    mock = await startMockProcess(['--api-key', KEY]);
  });
  afterAll(async () => {
    await mock.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('each row goes to its provider; images, ledger and failures are as the mock sent and billed', async () => {
    const csv = join(dir, 'mixed.csv');
    await writeFile(csv, ['id,model,aspect_ratio,size,quality,prompt', ...ROWS.map((row) => [...row.slice(0, 5), `"${row[5]}"`].join(','))].join('\n'));
    const out = join(dir, 'out');
    const result = await runCli(['run', csv, '--out', out, '--plain', '--concurrency', '4'], { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url });
    expect(result.stdout + result.stderr).not.toContain(KEY);
    expect(result.stdout + result.stderr).toContain('7 done, 2 failed');
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/refused \(line 9\): refused by moderation \(HTTP 400 InputTextSensitiveContentDetected: [^)]+/);
    expect(result.stdout).toMatch(/expired \(line 10\): no image \(image link [^ ]+ has expired or is gone \(HTTP 403\)/);

    const records = await mock.requests();
    const byPrompt = (prompt: string) => records.filter((record) => record.prompt === prompt);
    // One generation per row: the link cut twice was downloaded again, never generated again.
    for (const [, , , , , prompt] of ROWS) expect(byPrompt(prompt)).toHaveLength(1);
    expect(byPrompt(ROWS[4][5])[0]).toMatchObject({ size: '2496x1664' });
    expect(byPrompt(ROWS[5][5])[0]).toMatchObject({ size: '2048x1152', quality: 'low' });
    expect(byPrompt(ROWS[6][5])[0]).toMatchObject({ size: '1024x1792', quality: 'hd' });

    // Images: byte for byte what the mock sent, inline or behind a link.
    for (const [id, , , , , prompt] of ROWS.slice(0, 7)) {
      const [record] = byPrompt(prompt);
      const sidecar = JSON.parse(await readFile(join(out, 'mixed', `${id}.json`), 'utf8')) as { images: { file: string }[]; provider: string };
      expect(sidecar.images).toHaveLength(1);
      expect(sha256(await readFile(join(out, 'mixed', sidecar.images[0]!.file)))).toBe(record!.images[0]!.sha256);
    }

    // The ledger: one line per billed answer (the refusal was not billed), naming its provider,
    // with the billing record the mock billed.
    const ledger = (await Promise.all((await readdir(join(out, 'ledger'))).map((file) => readFile(join(out, 'ledger', file), 'utf8'))))
      .flatMap((text) => text.split('\n').filter(Boolean))
      .map((line) => JSON.parse(line) as LedgerEntry);
    expect(ledger.map((entry) => entry.rowId).sort()).toEqual(ROWS.map((row) => row[0]).filter((id) => id !== 'refused').sort());
    for (const entry of ledger) {
      const row = ROWS.find((r) => r[0] === entry.rowId)!;
      expect(entry.provider).toBe(row[1].startsWith('gemini') ? 'gemini' : 'openai-images');
      if (entry.provider === 'openai-images') expect(entry.billing).toEqual(byPrompt(row[5])[0]!.billing);
    }
    expect(ledger.find((entry) => entry.rowId === 'expired')).toMatchObject({ outcome: 'failed', images: 0, billing: { images: { count: 1, unit: '1024x1024/standard' } } });
    expect(ledger.find((entry) => entry.rowId === 'dalle')).toMatchObject({ outcome: 'done', usage: {} });
  });
});
