/**
 * The cost rule and the price table: to the picodollar, on every shape of usageMetadata.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { geminiTokenCounts } from '../src/providers/gemini/usage.js';
import { costPico, formatUsd, loadPriceFile, parseUsdPerMillion, picoToUsd, PriceTable } from '../src/cost/pricing.js';

const table = new PriceTable();
const pro = table.priceOf('gemini-3-pro-image-preview', '2026-11-24T00:00:00Z')!;

describe('token counts from usageMetadata', () => {
  it('image tokens from the IMAGE detail, the rest of candidates is text', () => {
    const counts = geminiTokenCounts({
      promptTokenCount: 20,
      candidatesTokenCount: 1150,
      thoughtsTokenCount: 240,
      totalTokenCount: 1410,
      candidatesTokensDetails: [{ modality: 'IMAGE', tokenCount: 1120 }],
    });
    expect(counts).toEqual({ promptTokens: 20, imageOutputTokens: 1120, textOutputTokens: 30, thoughtsTokens: 240, totalTokens: 1410 });
  });
  it('details listing TEXT and IMAGE give the same split', () => {
    const counts = geminiTokenCounts({
      promptTokenCount: 20,
      candidatesTokenCount: 1150,
      candidatesTokensDetails: [
        { modality: 'TEXT', tokenCount: 30 },
        { modality: 'IMAGE', tokenCount: 1120 },
      ],
    });
    expect(counts.imageOutputTokens).toBe(1120);
    expect(counts.textOutputTokens).toBe(30);
  });
  it('a blocked prompt bills only the prompt; no details means no image tokens', () => {
    expect(geminiTokenCounts({ promptTokenCount: 9, totalTokenCount: 9 })).toEqual({
      promptTokens: 9,
      imageOutputTokens: 0,
      textOutputTokens: 0,
      thoughtsTokens: 0,
      totalTokens: 9,
    });
  });
});

describe('the cost rule', () => {
  it('prompt × input + image × imageOutput + (text + thoughts) × textOutput', () => {
    const counts = { promptTokens: 20, imageOutputTokens: 1120, textOutputTokens: 30, thoughtsTokens: 240, totalTokens: 1410 };
    // 20×2 + 1120×120 + 270×12 = 40 + 134400 + 3240 = 137680 USD per million tokens
    expect(costPico(counts, pro)).toBe(137_680n * 1_000_000n);
    expect(picoToUsd(costPico(counts, pro))).toBe(0.13768);
  });
  it('sums a million responses with no drift', () => {
    const price = table.priceOf('gemini-2.5-flash-image', '2026-01-01')!;
    const one = costPico({ promptTokens: 7, imageOutputTokens: 1290, textOutputTokens: 3, thoughtsTokens: 0, totalTokens: 1300 }, price);
    let sum = 0n;
    for (let i = 0; i < 1_000_000; i++) sum += one;
    expect(sum).toBe(one * 1_000_000n);
    // each costs (7×0.30 + 1290×30 + 3×2.50) / 1e6 USD, so a million of them 38,709.60 USD
    expect(formatUsd(sum, 2)).toBe('$38,709.60');
  });
  it('parses prices exactly and refuses more than six decimals', () => {
    expect(parseUsdPerMillion('0.30', 'x')).toBe(300_000n);
    expect(parseUsdPerMillion(120, 'x')).toBe(120_000_000n);
    expect(() => parseUsdPerMillion('0.0000001', 'x')).toThrow(/at most 6 decimals/);
    expect(() => parseUsdPerMillion('-1', 'x')).toThrow();
  });
});

describe('price table', () => {
  it('finds a renamed model (without -preview) at the same price', () => {
    expect(table.priceOf('gemini-3-pro-image', '2026-11-24')).toEqual(pro);
  });
  it('applies a price given under the renamed id to the -preview id, and the other way round', () => {
    const renamed = table.withOverrides([{ model: 'gemini-3-pro-image', input: 1_600_000n, textOutput: 9_600_000n, imageOutput: 96_000_000n }]);
    expect(renamed.priceOf('gemini-3-pro-image-preview', '2026-11-24')!.imageOutput).toBe(96_000_000n);
    expect(renamed.priceOf('gemini-3-pro-image', '2026-11-24')!.imageOutput).toBe(96_000_000n);
    const preview = table.withOverrides([{ model: 'gemini-2.5-flash-image-preview', input: 1n, textOutput: 1n, imageOutput: 25_000_000n }]);
    expect(preview.priceOf('gemini-2.5-flash-image', '2026-11-24')!.imageOutput).toBe(25_000_000n);
  });
  it('has no price for an unknown model', () => {
    expect(table.priceOf('imagen-9', '2026-11-24')).toBeUndefined();
  });
  it('prices history at the price of its day, from a user file with dates', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'thb-prices-'));
    const file = join(dir, 'prices.yaml');
    await writeFile(
      file,
      ['prices:', '  - { model: gemini-3-pro-image-preview, input: 1.60, textOutput: 9.60, imageOutput: 96 }', '  - { model: gemini-3-pro-image-preview, from: 2026-12-01, input: "1.80", textOutput: 10.8, imageOutput: 108 }', '  - { model: imagen-9, input: 1, textOutput: 1, imageOutput: 40 }'].join('\n'),
    );
    const custom = table.withOverrides(await loadPriceFile(file));
    expect(custom.priceOf('gemini-3-pro-image-preview', '2026-11-30T23:59:59Z')!.imageOutput).toBe(96_000_000n);
    expect(custom.priceOf('gemini-3-pro-image-preview', '2026-12-01T00:00:00Z')!.imageOutput).toBe(108_000_000n);
    expect(custom.priceOf('imagen-9', '2026-12-01')!.imageOutput).toBe(40_000_000n);
    expect(custom.priceOf('gemini-2.5-flash-image', '2026-12-01')!.imageOutput).toBe(30_000_000n);
    await rm(dir, { recursive: true });
  });
  it('names the file and field of a bad price file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'thb-prices-'));
    const file = join(dir, 'prices.json');
    await writeFile(file, JSON.stringify({ prices: [{ model: 'm', input: 'cheap', textOutput: 1, imageOutput: 1 }] }));
    await expect(loadPriceFile(file)).rejects.toThrow(/prices\.json: prices\.0\.input: "cheap" is not a price/);
    await rm(dir, { recursive: true });
  });
});
