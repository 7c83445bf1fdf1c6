/**
 * What a file will cost before anything is sent, by model and image size. Image output tokens
 * per size come from the provider's pricing pages (providers/models.ts); prompt tokens from the
 * prompt's length; thinking and text from typical answers. The real bill comes from
 * usageMetadata; this says how it estimated so nobody mistakes it for a quote.
 */
import { capabilitiesOf, effectiveImageSize } from '../providers/models.js';
import { costPico, type PriceTable } from './pricing.js';
import type { Row, TokenCounts } from '../core/types.js';

/** Assumptions, shown with every estimate. */
export const ESTIMATE_ASSUMPTIONS = {
  /** Latin text runs about 4 characters a token; a CJK character is about one token. */
  charsPerToken: 4,
  /** A reference image as input, at the default media resolution. */
  tokensPerReferenceImage: 560,
  /** Thinking tokens of a Gemini 3 image answer, typical. */
  thinkingTokens: 400,
  /** The short text part of a TEXT+IMAGE answer. */
  textTokens: 30,
} as const;

const CJK = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]/gu;

export function promptTokens(prompt: string): number {
  const cjk = prompt.match(CJK)?.length ?? 0;
  return Math.ceil((prompt.length - cjk) / ESTIMATE_ASSUMPTIONS.charsPerToken) + cjk;
}

/** Expected token counts of one row's answer. */
export function estimateRow(row: Pick<Row, 'prompt' | 'model' | 'imageSize' | 'referenceImages'>, withText: boolean): TokenCounts {
  const model = capabilitiesOf(row.model);
  const size = effectiveImageSize(row.model, row.imageSize);
  const imageOutputTokens = model.imageTokens[size] ?? model.imageTokens[model.defaultImageSize] ?? 0;
  const prompt = promptTokens(row.prompt) + row.referenceImages.length * ESTIMATE_ASSUMPTIONS.tokensPerReferenceImage;
  const thoughts = model.thoughtImages ? ESTIMATE_ASSUMPTIONS.thinkingTokens : 0;
  const text = withText ? ESTIMATE_ASSUMPTIONS.textTokens : 0;
  return { promptTokens: prompt, imageOutputTokens, textOutputTokens: text, thoughtsTokens: thoughts, totalTokens: prompt + imageOutputTokens + text + thoughts };
}

/** What one row's call is expected to cost (budgets reserve it before the call); undefined without a price. */
export function estimateRowCost(row: Pick<Row, 'prompt' | 'model' | 'imageSize' | 'referenceImages'>, prices: PriceTable, withText: boolean, now = new Date().toISOString()): bigint | undefined {
  const price = prices.priceOf(row.model, now);
  return price ? costPico(estimateRow(row, withText), price) : undefined;
}

export interface EstimateLine {
  model: string;
  imageSize: string;
  rows: number;
  promptTokens: number;
  imageOutputTokens: number;
  otherOutputTokens: number;
  /** undefined when the model has no price. */
  costPico?: bigint;
}

export interface Estimate {
  lines: EstimateLine[];
  rows: number;
  costPico: bigint;
  unpricedModels: string[];
}

export function estimateRows(rows: Iterable<Row>, prices: PriceTable, withText: boolean, now = new Date().toISOString()): Estimate {
  const byKey = new Map<string, EstimateLine>();
  const unpriced = new Set<string>();
  let count = 0;
  for (const row of rows) {
    count += 1;
    const size = capabilitiesOf(row.model).imageSizes.length === 0 ? '-' : effectiveImageSize(row.model, row.imageSize);
    const key = `${row.model}\u0000${size}`;
    const line = byKey.get(key) ?? { model: row.model, imageSize: size, rows: 0, promptTokens: 0, imageOutputTokens: 0, otherOutputTokens: 0, costPico: 0n };
    const counts = estimateRow(row, withText);
    const price = prices.priceOf(row.model, now);
    line.rows += 1;
    line.promptTokens += counts.promptTokens;
    line.imageOutputTokens += counts.imageOutputTokens;
    line.otherOutputTokens += counts.textOutputTokens + counts.thoughtsTokens;
    if (price && line.costPico !== undefined) line.costPico += costPico(counts, price);
    else {
      line.costPico = undefined;
      unpriced.add(row.model);
    }
    byKey.set(key, line);
  }
  const lines = [...byKey.values()].sort((a, b) => a.model.localeCompare(b.model) || a.imageSize.localeCompare(b.imageSize));
  return { lines, rows: count, costPico: lines.reduce((sum, line) => sum + (line.costPico ?? 0n), 0n), unpricedModels: [...unpriced] };
}
