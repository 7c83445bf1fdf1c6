/**
 * The images endpoint's list prices (design.md section 2, 2026), so that every billed answer in
 * the request log carries its bill: a test compares a client's ledger with it, to the
 * micro-dollar. The product's own price table is a separate thing users override; this is the
 * mock's ground truth.
 */
import type { MockBilling } from '../records.js';

/** USD per million tokens is micro-USD per token: every rate here is a whole number. */
interface TokenRates {
  inputText: number;
  inputImage: number;
  outputText: number;
  outputImage: number;
}

const TOKEN_RATES: Readonly<Record<string, TokenRates>> = {
  'gpt-image-1.5': { inputText: 5, inputImage: 8, outputText: 10, outputImage: 32 },
  'gpt-image-2': { inputText: 5, inputImage: 8, outputText: 10, outputImage: 30 },
};

/** Micro-USD per image, by billing unit. */
const IMAGE_PRICES: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  'doubao-seedream-4-0-250828': { image: 30_000 },
  'doubao-seedream-4-5-251128': { image: 40_000 },
  'doubao-seedream-5-0-260128': { image: 35_000 },
  'dall-e-3': {
    '1024x1024/standard': 40_000,
    '1792x1024/standard': 80_000,
    '1024x1792/standard': 80_000,
    '1024x1024/hd': 80_000,
    '1792x1024/hd': 120_000,
    '1024x1792/hd': 120_000,
  },
  'dall-e-2': { '256x256/standard': 16_000, '512x512/standard': 18_000, '1024x1024/standard': 20_000 },
};

/** The list price of a billed answer in micro-USD; a mock model with no price is a bug, said loudly. */
export function listPriceMicroUsd(model: string, billing: MockBilling): number {
  let price = 0;
  if (billing.tokens) {
    const rates = TOKEN_RATES[model];
    if (!rates) throw new Error(`mock: no token price for ${model}`);
    const t = billing.tokens;
    price += t.inputText * rates.inputText + t.inputImage * rates.inputImage + t.outputText * rates.outputText + t.outputImage * rates.outputImage;
  }
  if (billing.images) {
    const each = IMAGE_PRICES[model]?.[billing.images.unit];
    if (each === undefined) throw new Error(`mock: no price for ${model} ${billing.images.unit}`);
    price += billing.images.count * each;
  }
  return price;
}
