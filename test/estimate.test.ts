/**
 * Estimates before spending: sent nothing, priced by the same rule, close to what a run bills.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { estimateBilling, estimateRow, estimateRowCost, estimateRows, promptTokens, type EstimateRow } from '../src/cost/estimate.js';
import { PriceTable } from '../src/cost/pricing.js';
import type { Row } from '../src/core/types.js';
import { runInProcess } from './helpers/cli-in-process.js';
import { startMockProcess, type MockProcess } from './helpers/processes.js';

const row = (model: string, imageSize?: string, prompt = 'a red mug on a table', refs = 0): Row => ({
  id: 'x',
  line: 2,
  prompt,
  model,
  imageSize,
  referenceImages: Array.from({ length: refs }, (_, i) => `ref${i}.png`),
  tags: [],
  metadata: {},
});

describe('estimate', () => {
  it('counts image tokens per model and size from the price pages', () => {
    expect(estimateRow(row('gemini-3-pro-image-preview', '4K'), true).imageOutputTokens).toBe(2000);
    expect(estimateRow(row('gemini-3-pro-image-preview', '1K'), true).imageOutputTokens).toBe(1120);
    expect(estimateRow(row('gemini-3.1-flash-image-preview', '512'), true).imageOutputTokens).toBe(747);
    expect(estimateRow(row('gemini-2.5-flash-image'), true)).toMatchObject({ imageOutputTokens: 1290, thoughtsTokens: 0 });
  });

  it('counts CJK characters as about a token each and reference images on top', () => {
    expect(promptTokens('abcdefgh')).toBe(2);
    expect(promptTokens('白色背景')).toBe(4);
    expect(estimateRow(row('gemini-3-pro-image-preview', '1K', 'abcd', 2), false).promptTokens).toBe(1 + 2 * 560);
  });

  it('groups by model and size, and says when a model has no price', () => {
    const estimate = estimateRows([row('gemini-3-pro-image-preview', '1K'), row('gemini-3-pro-image-preview', '1K'), row('imagen-9')], new PriceTable(), true);
    expect(estimate.rows).toBe(3);
    expect(estimate.lines.find((line) => line.model === 'gemini-3-pro-image-preview')!.rows).toBe(2);
    expect(estimate.unpricedModels).toEqual(['imagen-9']);
  });

  it('covers every model: one image a row at its unit price, GPT Image by the published output tokens', () => {
    const prices = new PriceTable();
    const at = (fields: Partial<EstimateRow> & { model: string }, prompt = 'a red mug on a table'): number =>
      Number(estimateRowCost({ prompt, referenceImages: [], ...fields }, prices, true)!) / 1e12;
    expect(at({ model: 'doubao-seedream-4-0-250828' })).toBe(0.03);
    expect(at({ model: 'doubao-seedream-4-5-251128', size: '4K' })).toBe(0.04);
    expect(at({ model: 'doubao-seedream-5-0-260128' })).toBe(0.035);
    // DALL·E 3: the native size of the aspect ratio (or as given), standard unless hd: the
    // provider's mapping, so the estimate prices what the run sends.
    expect(at({ model: 'dall-e-3' })).toBe(0.04);
    expect(at({ model: 'dall-e-3', aspectRatio: '16:9' })).toBe(0.08);
    expect(at({ model: 'dall-e-3', aspectRatio: '9:16', quality: 'hd' })).toBe(0.12);
    expect(at({ model: 'dall-e-3', size: '1024x1024', quality: 'hd' })).toBe(0.08);
    expect(at({ model: 'dall-e-2', size: '256x256' })).toBe(0.016);
    expect(at({ model: 'dall-e-2', size: '512x512' })).toBe(0.018);
    expect(at({ model: 'dall-e-2' })).toBe(0.02);
    // GPT Image: 5 prompt tokens at $5/M plus the image tokens of size × quality at $32/M (1.5) or $30/M (2).
    expect(at({ model: 'gpt-image-1.5', size: '1024x1024', quality: 'low' })).toBe((5 * 5 + 272 * 32) / 1e6);
    expect(at({ model: 'gpt-image-1.5', size: '1536x1024', quality: 'medium' })).toBe((5 * 5 + 1584 * 32) / 1e6);
    expect(at({ model: 'gpt-image-2', aspectRatio: '2:3', quality: 'high' })).toBe((5 * 5 + 6240 * 30) / 1e6);
    // `auto` (or no quality) is counted as high, the dearest; no size: square.
    expect(at({ model: 'gpt-image-2' })).toBe((5 * 5 + 4160 * 30) / 1e6);
    expect(at({ model: 'gpt-image-2', size: 'auto', quality: 'auto' })).toBe((5 * 5 + 4160 * 30) / 1e6);
    // gpt-image-2 sizes beyond the presets: the published figure scaled by the pixels.
    expect(estimateBilling({ model: 'gpt-image-2', prompt: 'x', referenceImages: [], size: '2048x2048', quality: 'low' }, true).billing.tokens!.outputImage).toBe(272 * 4);
    // Reference images are image input, priced at GPT Image's image input rate ($8/M).
    expect(at({ model: 'gpt-image-1.5', size: '1024x1024', quality: 'low', referenceImages: ['a.png'] })).toBe((5 * 5 + 560 * 8 + 272 * 32) / 1e6);
    // Gemini stays as it was: prompt, image tokens of the size, thinking and text.
    expect(at({ model: 'gemini-3-pro-image-preview', imageSize: '2K' })).toBe((5 * 2 + 1120 * 120 + 430 * 12) / 1e6);
  });

  it('a file of all ten models: grouped by model and the unit it is billed in, image-billed lines without tokens', () => {
    const rows: EstimateRow[] = [
      { model: 'dall-e-3', aspectRatio: '16:9', quality: 'hd' },
      { model: 'dall-e-3', aspectRatio: '16:9', quality: 'hd' },
      { model: 'dall-e-3' },
      { model: 'dall-e-2', size: '512x512' },
      { model: 'doubao-seedream-4-0-250828' },
      { model: 'doubao-seedream-4-5-251128' },
      { model: 'doubao-seedream-5-0-260128' },
      { model: 'gpt-image-1.5', quality: 'medium' },
      { model: 'gpt-image-2', size: '1024x1536', quality: 'low' },
      { model: 'gemini-3-pro-image-preview', imageSize: '1K' },
      { model: 'gemini-3.1-flash-image-preview', imageSize: '512' },
      { model: 'gemini-2.5-flash-image' },
    ].map((fields) => ({ prompt: 'a red mug on a table', referenceImages: [], ...fields }));
    const estimate = estimateRows(rows, new PriceTable(), true);
    expect(estimate.unpricedModels).toEqual([]);
    expect(estimate.lines.map((line) => [line.model, line.imageSize, line.rows])).toEqual([
      ['dall-e-2', '512x512/standard', 1],
      ['dall-e-3', '1024x1024/standard', 1],
      ['dall-e-3', '1792x1024/hd', 2],
      ['doubao-seedream-4-0-250828', '2048x2048', 1],
      ['doubao-seedream-4-5-251128', '2048x2048', 1],
      ['doubao-seedream-5-0-260128', '2048x2048', 1],
      ['gemini-2.5-flash-image', '-', 1],
      ['gemini-3-pro-image-preview', '1K', 1],
      ['gemini-3.1-flash-image-preview', '512', 1],
      ['gpt-image-1.5', 'auto/medium', 1],
      ['gpt-image-2', '1024x1536/low', 1],
    ]);
    const dalle = estimate.lines.find((line) => line.imageSize === '1792x1024/hd')!;
    expect(dalle).toMatchObject({ billedImages: 2, promptTokens: 0, imageOutputTokens: 0, costPico: 240_000_000_000n });
    expect(estimate.lines.find((line) => line.model === 'gpt-image-2')).toMatchObject({ billedImages: 0, promptTokens: 5, imageOutputTokens: 408 });
    expect(estimate.costPico).toBe(estimate.lines.reduce((sum, line) => sum + line.costPico!, 0n));
  });

  it('the estimate command prints per-image lines money first and without tokens', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'thb-estimate-'));
    try {
      const csv = join(dir, 'rows.csv');
      await writeFile(csv, 'id,prompt,model,aspect_ratio\na,a red mug,gemini-3-pro-image-preview,1:1\nb,a blue mug,doubao-seedream-4-5-251128,\nc,a green mug,dall-e-3,16:9\n');
      const result = await runInProcess(['estimate', csv], { TOKENHOT_API_KEY: 'k' });
      expect(result.code, result.stderr).toBe(0);
      const lines = result.stdout.split('\n');
      expect(lines[0]).toMatch(/^model\s+size\s+rows\s+est\. cost\s+prompt tok\s+image tok/);
      expect(lines.find((line) => line.startsWith('doubao-seedream-4-5-251128'))).toMatch(/^doubao-seedream-4-5-251128\s+2048x2048\s+1\s+\$0\.0400\s+-\s+-\s+-$/);
      expect(lines.find((line) => line.startsWith('dall-e-3'))).toMatch(/^dall-e-3\s+1792x1024\/standard\s+1\s+\$0\.0800\s+-\s+-\s+-$/);
      expect(result.stdout).toMatch(/TOTAL\s+3\s+\$0\.2596/);
      expect(result.stdout).toContain('Seedream and DALL-E: one image a row');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('estimates of a file, before and after a run against a mock-server process', () => {
  let mock: MockProcess;
  beforeAll(async () => {
    mock = await startMockProcess(['--api-key', 'k']);
  });
  afterAll(async () => {
    await mock.stop();
  });

  it('run --dry-run sends nothing and lands within a few percent of what the run then bills', async () => {
    await mock.reset();
    const env = { TOKENHOT_API_KEY: 'k', TOKENHOT_BASE_URL: mock.url };
    const dry = await runInProcess(['run', 'jobs/examples/catalog.csv', '--dry-run', '--out', '/tmp/thb-dry-run-never'], env);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('nothing sent');
    expect(await mock.requests()).toEqual([]);
    const estimated = Number(dry.stdout.match(/TOTAL\s+20\s+\$([\d.]+)/)![1]);

    const json = await runInProcess(['estimate', 'jobs/examples/catalog.csv', '--format', 'json'], env);
    expect((JSON.parse(json.stdout) as { costUsd: number }).costUsd).toBeCloseTo(estimated, 4);
    const total = (await mock.requests()).length;
    expect(total).toBe(0);
    // The mock bills like the real endpoint; the estimate should be near it.
    expect(estimated).toBeGreaterThan(1.9);
    expect(estimated).toBeLessThan(2.2);
  });

  it('run --dry-run counts the rows a run would do: not a billed failure (unless --retry-failed), but an unbilled one; bad rows are listed', async () => {
    await mock.reset();
    const dir = await mkdtemp(join(tmpdir(), 'thb-dry-'));
    try {
      const env = { TOKENHOT_API_KEY: 'k', TOKENHOT_BASE_URL: mock.url };
      const csv = join(dir, 'rows.csv');
      await writeFile(csv, 'id,prompt,model\nok,fine,gemini-2.5-flash-image\nblocked,[mock:blocked],gemini-2.5-flash-image\nrefused,[mock:400],gemini-2.5-flash-image\n');
      expect((await runInProcess(['run', csv, '--out', join(dir, 'out'), '--plain'], env)).code).toBe(1);
      const dry = await runInProcess(['run', csv, '--out', join(dir, 'out'), '--dry-run'], env);
      expect(dry.code).toBe(0);
      expect(dry.stdout).toMatch(/TOTAL\s+1\s+\$/);
      expect(dry.stdout).toContain('(2 row(s) a run would not do again are not counted');
      const again = await runInProcess(['run', csv, '--out', join(dir, 'out'), '--dry-run', '--retry-failed'], env);
      expect(again.stdout).toMatch(/TOTAL\s+2\s+\$/);

      await writeFile(csv, 'id,prompt,aspect_ratio\na,one,5:7\nb,two,\nb,three,\n');
      const estimate = await runInProcess(['estimate', csv, '--format', 'json'], env);
      expect(estimate.code).toBe(1);
      expect((JSON.parse(estimate.stdout) as { rejectedRows: string[] }).rejectedRows).toEqual([
        expect.stringMatching(/rows\.csv:2: aspect_ratio: "5:7"/),
        expect.stringMatching(/rows\.csv:4: id: "b" is already the id of line 3/),
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
