/**
 * The mock's bill at the list prices, written out here apart from src/cost/pricing.ts so that a
 * report can be checked against it: Gemini's from the usageMetadata the mock sent (micro-USD per
 * million tokens, design.md section 2), the images endpoint's as the mock prices each answer.
 */
import type { UsageMetadata } from '../../src/core/types.js';
import type { MockRecord } from './processes.js';

export const GEMINI_LIST_MICRO: Record<string, { input: bigint; text: bigint; image: bigint }> = {
  'gemini-3-pro-image-preview': { input: 2_000_000n, text: 12_000_000n, image: 120_000_000n },
  'gemini-3.1-flash-image-preview': { input: 500_000n, text: 3_000_000n, image: 60_000_000n },
  'gemini-2.5-flash-image': { input: 300_000n, text: 2_500_000n, image: 30_000_000n },
};

/** Gemini's cost rule on raw usage, in picodollars: text output is candidates minus image, plus thoughts. */
export function geminiPico(model: string, usage: UsageMetadata, price = GEMINI_LIST_MICRO[model]!): bigint {
  const image = (usage.candidatesTokensDetails ?? []).filter((d) => d?.modality === 'IMAGE').reduce((sum, d) => sum + (d?.tokenCount ?? 0), 0);
  const text = (usage.candidatesTokenCount ?? 0) - image + (usage.thoughtsTokenCount ?? 0);
  return BigInt(usage.promptTokenCount ?? 0) * price.input + BigInt(image) * price.image + BigInt(text) * price.text;
}

export const usd = (pico: bigint): number => Number(pico) / 1e12;

/** The bill per `family/model` (picodollars) of every billed answer the mock logged. */
export function mockBill(records: MockRecord[]): Map<string, bigint> {
  const bill = new Map<string, bigint>();
  for (const record of records) {
    const pico =
      record.family === 'gemini'
        ? record.usageMetadata
          ? geminiPico(record.model, record.usageMetadata)
          : undefined
        : record.listPriceMicroUsd !== undefined
          ? BigInt(record.listPriceMicroUsd) * 1_000_000n
          : undefined;
    const key = `${record.family}/${record.model}`;
    if (pico !== undefined) bill.set(key, (bill.get(key) ?? 0n) + pico);
  }
  return bill;
}
