/**
 * The cost rule and the price table: to the picodollar, for every provider's billing record and
 * every shape of usageMetadata; price files old and new, and their errors.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { geminiBilling, geminiTokenCounts } from '../src/providers/gemini/usage.js';
import type { BillingRecord } from '../src/cost/billing.js';
import {
  BUILTIN_PRICES,
  billedCostPico,
  formatUsd,
  geminiRates,
  loadPriceFile,
  parseUsdPerImage,
  parseUsdPerMillion,
  picoToUsd,
  PriceTable,
  unpricedPart,
  type ModelPrice,
} from '../src/cost/pricing.js';

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

/** The Gemini billing record of report-style token counts (prompt all text). */
const gemini = (prompt: number, image: number, text: number, thoughts: number): BillingRecord => ({
  tokens: { inputText: prompt, inputImage: 0, outputImage: image, outputText: text, thinking: thoughts },
});
const USD = 1_000_000_000_000n;
const price = (model: string): ModelPrice => table.priceOf(model, '2026-11-24')!;

describe('the cost rule', () => {
  it('Gemini: prompt × input + image × imageOutput + (text + thoughts) × textOutput', () => {
    // 20×2 + 1120×120 + 270×12 = 40 + 134400 + 3240 = 137680 USD per million tokens
    expect(billedCostPico(gemini(20, 1120, 30, 240), pro)).toBe(137_680n * 1_000_000n);
    expect(picoToUsd(billedCostPico(gemini(20, 1120, 30, 240), pro)!)).toBe(0.13768);
    // Image input (reference images) at the input price, from promptTokensDetails.
    const withReference = geminiBilling({ promptTokenCount: 580, promptTokensDetails: [{ modality: 'IMAGE', tokenCount: 560 }], candidatesTokenCount: 1120, candidatesTokensDetails: [{ modality: 'IMAGE', tokenCount: 1120 }] });
    expect(withReference.tokens).toMatchObject({ inputText: 20, inputImage: 560 });
    expect(billedCostPico(withReference, pro)).toBe((580n * 2n + 1120n * 120n) * 1_000_000n);
  });
  it('GPT Image: text input 5, image input 8, image output 32 (1.5) or 30 (2), text output 10 per million', () => {
    const billing: BillingRecord = { tokens: { inputText: 47, inputImage: 1_290, outputText: 3, outputImage: 4_160, thinking: 0, total: 5_500 } };
    // 47×5 + 1290×8 + 3×10 + 4160×32 = 235 + 10320 + 30 + 133120 = 143705 micro-USD
    expect(billedCostPico(billing, price('gpt-image-1.5'))).toBe(143_705n * 1_000_000n);
    // the same with 4160×30 = 124800: 135385 micro-USD
    expect(billedCostPico(billing, price('gpt-image-2'))).toBe(135_385n * 1_000_000n);
  });
  it('Seedream: per generated image; a group of four is four images', () => {
    expect(billedCostPico({ images: { count: 1, unit: 'image' } }, price('doubao-seedream-4-0-250828'))).toBe(30_000_000_000n);
    expect(billedCostPico({ images: { count: 4, unit: 'image' } }, price('doubao-seedream-4-5-251128'))).toBe(160_000_000_000n);
    expect(billedCostPico({ images: { count: 3, unit: 'image' } }, price('doubao-seedream-5-0-260128'))).toBe(105_000_000_000n);
  });
  it.each([
    ['dall-e-3', '1024x1024/standard', 40_000_000_000n],
    ['dall-e-3', '1792x1024/standard', 80_000_000_000n],
    ['dall-e-3', '1024x1792/standard', 80_000_000_000n],
    ['dall-e-3', '1024x1024/hd', 80_000_000_000n],
    ['dall-e-3', '1792x1024/hd', 120_000_000_000n],
    ['dall-e-3', '1024x1792/hd', 120_000_000_000n],
    ['dall-e-2', '256x256/standard', 16_000_000_000n],
    ['dall-e-2', '512x512/standard', 18_000_000_000n],
    ['dall-e-2', '1024x1024/standard', 20_000_000_000n],
  ] as const)('DALL·E: %s %s is priced by size × quality', (model, unit, pico) => {
    expect(billedCostPico({ images: { count: 1, unit } }, price(model))).toBe(pico);
  });
  it('a kind billed with no rate, or a unit with no price, is unpriced: never a silent $0', () => {
    const dalle = price('dall-e-3');
    expect(billedCostPico({ images: { count: 1, unit: '2048x2048/hd' } }, dalle)).toBeUndefined();
    expect(unpricedPart({ images: { count: 1, unit: '2048x2048/hd' } }, dalle)).toBe('images of unit "2048x2048/hd"');
    // A unit named like an Object property is no price either.
    expect(billedCostPico({ images: { count: 1, unit: 'constructor' } }, dalle)).toBeUndefined();
    // GPT Image has no thinking rate; tokens on a per-image model have no rate at all.
    expect(unpricedPart({ tokens: { inputText: 1, inputImage: 0, outputText: 0, outputImage: 10, thinking: 5 } }, price('gpt-image-2'))).toBe('thinking tokens');
    expect(billedCostPico(gemini(10, 0, 0, 0), dalle)).toBeUndefined();
    expect(billedCostPico({ images: { count: 1, unit: 'image' } }, pro)).toBeUndefined();
    // Zero of an unpriced kind is nothing to price; a count that is not whole is not priced.
    expect(billedCostPico({ images: { count: 0, unit: 'image' } }, pro)).toBe(0n);
    expect(billedCostPico(gemini(10, 0, 0, 0), price('gpt-image-2'))).toBe(50_000_000n);
    expect(billedCostPico(gemini(1.5, 0, 0, 0), pro)).toBeUndefined();
  });
  it('tokens and images in one record add up', () => {
    const both: ModelPrice = { model: 'x', inputText: 1_000_000n, perImage: { image: 10_000_000_000n } };
    expect(billedCostPico({ tokens: { inputText: 100, inputImage: 0, outputText: 0, outputImage: 0, thinking: 0 }, images: { count: 2, unit: 'image' } }, both)).toBe(100n * 1_000_000n + 2n * 10n * 1_000_000_000n);
  });
  it('sums a million responses with no drift', () => {
    const one = billedCostPico(gemini(7, 1290, 3, 0), price('gemini-2.5-flash-image'))!;
    let sum = 0n;
    for (let i = 0; i < 1_000_000; i++) sum += one;
    expect(sum).toBe(one * 1_000_000n);
    // each costs (7×0.30 + 1290×30 + 3×2.50) / 1e6 USD, so a million of them 38,709.60 USD
    expect(formatUsd(sum, 2)).toBe('$38,709.60');
    // $0.035 a Seedream 5.0 image, a million times: exactly $35,000.
    expect(billedCostPico({ images: { count: 1_000_000, unit: 'image' } }, price('doubao-seedream-5-0-260128'))).toBe(35_000n * USD);
  });
  it('parses prices exactly and refuses more digits than it keeps', () => {
    expect(parseUsdPerMillion('0.30', 'x')).toBe(300_000n);
    expect(parseUsdPerMillion(120, 'x')).toBe(120_000_000n);
    expect(() => parseUsdPerMillion('0.0000001', 'x')).toThrow(/at most 6 decimals/);
    expect(() => parseUsdPerMillion('-1', 'x')).toThrow();
    expect(parseUsdPerImage('0.035', 'x')).toBe(35_000_000_000n);
    expect(parseUsdPerImage(0.016, 'x')).toBe(16_000_000_000n);
    expect(parseUsdPerImage('0.000000000001', 'x')).toBe(1n);
    expect(() => parseUsdPerImage('0.0000000000001', 'x')).toThrow(/at most 12 decimals/);
    expect(() => parseUsdPerImage(1e-13, 'x')).toThrow(/"0.0000000000001" is not a price in USD per image/);
    expect(parseUsdPerImage(1e-12, 'x')).toBe(1n);
    expect(parseUsdPerMillion(1e21, 'x')).toBe(10n ** 27n);
  });
});

describe('price table', () => {
  it('has a price, with its source and date, for each of the ten models', () => {
    const models = ['gemini-3-pro-image-preview', 'gemini-3.1-flash-image-preview', 'gemini-2.5-flash-image', 'gpt-image-1.5', 'gpt-image-2', 'doubao-seedream-4-0-250828', 'doubao-seedream-4-5-251128', 'doubao-seedream-5-0-260128', 'dall-e-3', 'dall-e-2'];
    expect(BUILTIN_PRICES.map((p) => p.model).sort()).toEqual([...models].sort());
    for (const model of models) expect(price(model).source, model).toMatch(/design\.md section 2.*2026/);
    // Gemini's three prices as rates of the five kinds.
    expect(pro).toMatchObject(geminiRates(2_000_000n, 12_000_000n, 120_000_000n));
  });
  it('finds a renamed model (without -preview) at the same price', () => {
    expect(table.priceOf('gemini-3-pro-image', '2026-11-24')).toEqual(pro);
  });
  it('applies a price given under the renamed id to the -preview id, and the other way round', () => {
    const renamed = table.withOverrides([{ model: 'gemini-3-pro-image', ...geminiRates(1_600_000n, 9_600_000n, 96_000_000n) }]);
    expect(renamed.priceOf('gemini-3-pro-image-preview', '2026-11-24')!.outputImage).toBe(96_000_000n);
    expect(renamed.priceOf('gemini-3-pro-image', '2026-11-24')!.outputImage).toBe(96_000_000n);
    const preview = table.withOverrides([{ model: 'gemini-2.5-flash-image-preview', ...geminiRates(1n, 1n, 25_000_000n) }]);
    expect(preview.priceOf('gemini-2.5-flash-image', '2026-11-24')!.outputImage).toBe(25_000_000n);
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
    expect(custom.priceOf('gemini-3-pro-image-preview', '2026-11-30T23:59:59Z')!.outputImage).toBe(96_000_000n);
    expect(custom.priceOf('gemini-3-pro-image-preview', '2026-12-01T00:00:00Z')!.outputImage).toBe(108_000_000n);
    // The old format's input and textOutput price both kinds each covers.
    expect(custom.priceOf('gemini-3-pro-image-preview', '2026-12-01')).toMatchObject({ inputText: 1_800_000n, inputImage: 1_800_000n, outputText: 10_800_000n, thinking: 10_800_000n });
    expect(custom.priceOf('imagen-9', '2026-12-01')!.outputImage).toBe(40_000_000n);
    expect(custom.priceOf('gemini-2.5-flash-image', '2026-12-01')!.outputImage).toBe(30_000_000n);
    await rm(dir, { recursive: true });
  });
  it('a price file with the new fields: token rates by kind and per-image prices by unit, each with its source', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'thb-prices-'));
    const file = join(dir, 'prices.yaml');
    await writeFile(
      file,
      [
        'prices:',
        '  - { model: gpt-image-2, inputText: 4, inputImage: 6.5, outputImage: 24, outputText: 8, source: "reseller invoice 2026-11" }',
        '  - model: dall-e-3',
        '    perImage: { 1024x1024/standard: 0.032, 1024x1024/hd: "0.064", 2048x2048/hd: 0.000000000001 }',
        '  - { model: doubao-seedream-5-0-260128, perImage: { image: 0.028 } }',
      ].join('\n'),
    );
    const custom = table.withOverrides(await loadPriceFile(file));
    const gpt = custom.priceOf('gpt-image-2', '2026-12-01')!;
    expect(gpt).toMatchObject({ inputText: 4_000_000n, inputImage: 6_500_000n, outputImage: 24_000_000n, outputText: 8_000_000n, source: 'reseller invoice 2026-11' });
    expect(gpt.thinking).toBeUndefined();
    const dalle = custom.priceOf('dall-e-3', '2026-12-01')!;
    expect(dalle.source).toBe(`${file}: prices.1`);
    expect(billedCostPico({ images: { count: 3, unit: '1024x1024/hd' } }, dalle)).toBe(192_000_000_000n);
    expect(billedCostPico({ images: { count: 1, unit: '2048x2048/hd' } }, dalle)).toBe(1n);
    // An entry replaces the model's whole price: a unit it leaves out has none.
    expect(billedCostPico({ images: { count: 1, unit: '1792x1024/hd' } }, dalle)).toBeUndefined();
    expect(billedCostPico({ images: { count: 1, unit: 'image' } }, custom.priceOf('doubao-seedream-5-0-260128', '2026-12-01')!)).toBe(28_000_000_000n);
    await rm(dir, { recursive: true });
  });
  it.each([
    [{ model: 'm', input: 'cheap', textOutput: 1, imageOutput: 1 }, /prices\.json: prices\.0\.input: "cheap" is not a price/],
    [{ model: 'm', perImage: { '1024x1024/hd': '0.0000000000001' } }, /prices\.json: prices\.0\.perImage\.1024x1024\/hd: "0\.0000000000001" is not a price in USD per image \(e\.g\. 0\.04, at most 12 decimals\)/],
    [{ model: 'm', input: 1, inputText: 2 }, /prices\.json: prices\.0\.inputText: given with input, which sets it too/],
    [{ model: 'm', imageOuput: 30 }, /prices\.json: prices\.0: .*imageOuput/],
    [{ model: 'm', from: '2026-12-01' }, /prices\.json: prices\.0: no price: give token rates/],
    [{ model: 'm', perImage: { image: -1 } }, /prices\.json: prices\.0\.perImage\.image: "-1" is not a price/],
  ])('names the file, entry and field of a bad price file: %j', async (entry, message) => {
    const dir = await mkdtemp(join(tmpdir(), 'thb-prices-'));
    const file = join(dir, 'prices.json');
    await writeFile(file, JSON.stringify({ prices: [entry] }));
    await expect(loadPriceFile(file)).rejects.toThrow(message);
    await rm(dir, { recursive: true });
  });
});
