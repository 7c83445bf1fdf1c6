/**
 * Estimates before spending: sent nothing, priced by the same rule, close to what a run bills.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { estimateRow, estimateRows, promptTokens } from '../src/cost/estimate.js';
import { PriceTable } from '../src/cost/pricing.js';
import type { Row } from '../src/core/types.js';
import { runCli, startMockProcess } from './helpers/processes.js';

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

  it('run --dry-run sends nothing and lands within a few percent of what the run then bills', async () => {
    const mock = await startMockProcess(['--api-key', 'k']);
    try {
      const env = { TOKENHOT_API_KEY: 'k', TOKENHOT_BASE_URL: mock.url };
      const dry = await runCli(['run', 'jobs/examples/catalog.csv', '--dry-run', '--out', '/tmp/thb-dry-run-never'], env);
      expect(dry.code).toBe(0);
      expect(dry.stdout).toContain('nothing sent');
      expect(await mock.requests()).toEqual([]);
      const estimated = Number(dry.stdout.match(/TOTAL\s+20\s+\$([\d.]+)/)![1]);

      const json = await runCli(['estimate', 'jobs/examples/catalog.csv', '--format', 'json'], env);
      expect((JSON.parse(json.stdout) as { costUsd: number }).costUsd).toBeCloseTo(estimated, 4);
      const total = (await mock.requests()).length;
      expect(total).toBe(0);
      // The mock bills like the real endpoint; the estimate should be near it.
      expect(estimated).toBeGreaterThan(1.9);
      expect(estimated).toBeLessThan(2.2);
    } finally {
      await mock.stop();
    }
  });

  it('run --dry-run counts the rows a run would do: not a billed failure (unless --retry-failed), but an unbilled one; bad rows are listed', async () => {
    const mock = await startMockProcess(['--api-key', 'k']);
    const dir = await mkdtemp(join(tmpdir(), 'thb-dry-'));
    try {
      const env = { TOKENHOT_API_KEY: 'k', TOKENHOT_BASE_URL: mock.url };
      const csv = join(dir, 'rows.csv');
      await writeFile(csv, 'id,prompt,model\nok,fine,gemini-2.5-flash-image\nblocked,[mock:blocked],gemini-2.5-flash-image\nrefused,[mock:400],gemini-2.5-flash-image\n');
      expect((await runCli(['run', csv, '--out', join(dir, 'out'), '--plain'], env)).code).toBe(1);
      const dry = await runCli(['run', csv, '--out', join(dir, 'out'), '--dry-run'], env);
      expect(dry.code).toBe(0);
      expect(dry.stdout).toMatch(/TOTAL\s+1\s+\$/);
      expect(dry.stdout).toContain('(2 row(s) a run would not do again are not counted');
      const again = await runCli(['run', csv, '--out', join(dir, 'out'), '--dry-run', '--retry-failed'], env);
      expect(again.stdout).toMatch(/TOTAL\s+2\s+\$/);

      await writeFile(csv, 'id,prompt,aspect_ratio\na,one,5:7\nb,two,\nb,three,\n');
      const estimate = await runCli(['estimate', csv, '--format', 'json'], env);
      expect(estimate.code).toBe(1);
      expect((JSON.parse(estimate.stdout) as { rejectedRows: string[] }).rejectedRows).toEqual([
        expect.stringMatching(/rows\.csv:2: aspect_ratio: "5:7"/),
        expect.stringMatching(/rows\.csv:4: id: "b" is already the id of line 3/),
      ]);
    } finally {
      await mock.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
