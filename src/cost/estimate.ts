/**
 * What a file will cost before anything is sent, by model and image size. Each row becomes the
 * billing record its answer is expected to be billed as, priced by the one cost rule
 * (pricing.ts): Gemini's image output tokens per size come from the provider's pricing pages
 * (providers/models.ts), prompt tokens from the prompt's length, thinking and text from typical
 * answers; the images endpoint's models as images-endpoint-estimate.ts says (one image a row).
 * The real bill comes from the answer's usage; this says how it estimated so nobody mistakes it
 * for a quote.
 */
import { capabilitiesOf, effectiveImageSize } from '../providers/models.js';
import { billedCostPico, type PriceTable } from './pricing.js';
import { tokenCountsOf, type BillingRecord } from './billing.js';
import { findImagesModel } from '../providers/openai-images/models.js';
import { estimateImagesRow, type ImageOptions } from './images-endpoint-estimate.js';
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

/** What the estimate reads of a row (`size` and `quality` are the images endpoint's columns). */
export type EstimateRow = Pick<Row, 'prompt' | 'model' | 'imageSize' | 'referenceImages'> & ImageOptions;

/** The billing record one row's answer is expected to have, and the size it is shown under. */
export function estimateBilling(row: EstimateRow, withText: boolean): { billing: BillingRecord; size: string } {
  const input = { text: promptTokens(row.prompt), image: row.referenceImages.length * ESTIMATE_ASSUMPTIONS.tokensPerReferenceImage };
  const images = findImagesModel(row.model);
  if (images) return estimateImagesRow(images, row, input);
  const model = capabilitiesOf(row.model);
  const size = effectiveImageSize(row.model, row.imageSize);
  const outputImage = model.imageTokens[size] ?? model.imageTokens[model.defaultImageSize] ?? 0;
  return {
    billing: {
      tokens: {
        inputText: input.text,
        inputImage: input.image,
        outputImage,
        outputText: withText ? ESTIMATE_ASSUMPTIONS.textTokens : 0,
        thinking: model.thoughtImages ? ESTIMATE_ASSUMPTIONS.thinkingTokens : 0,
      },
    },
    size: model.imageSizes.length === 0 ? '-' : size,
  };
}

/** Expected token counts of one row's answer (zeros for a model billed by the image). */
export function estimateRow(row: EstimateRow, withText: boolean): TokenCounts {
  return tokenCountsOf(estimateBilling(row, withText).billing);
}

/** What one row's call is expected to cost (budgets reserve it before the call); undefined without a price. */
export function estimateRowCost(row: EstimateRow, prices: PriceTable, withText: boolean, now = new Date().toISOString()): bigint | undefined {
  const price = prices.priceOf(row.model, now);
  return price ? billedCostPico(estimateBilling(row, withText).billing, price) : undefined;
}

export interface EstimateLine {
  model: string;
  /** The image size; for the images endpoint the native size and quality (`1024x1024/hd`). */
  imageSize: string;
  rows: number;
  /** Images billed by the piece (the images endpoint's Seedream and DALL·E); 0 for token-billed models. */
  billedImages: number;
  promptTokens: number;
  imageOutputTokens: number;
  otherOutputTokens: number;
  /** undefined when the model (or the unit) has no price. */
  costPico?: bigint;
}

export interface Estimate {
  lines: EstimateLine[];
  rows: number;
  costPico: bigint;
  unpricedModels: string[];
}

export function estimateRows(rows: Iterable<EstimateRow>, prices: PriceTable, withText: boolean, now = new Date().toISOString()): Estimate {
  const byKey = new Map<string, EstimateLine>();
  const unpriced = new Set<string>();
  let count = 0;
  for (const row of rows) {
    count += 1;
    const { billing, size } = estimateBilling(row, withText);
    const key = `${row.model}\u0000${size}`;
    const line = byKey.get(key) ?? { model: row.model, imageSize: size, rows: 0, billedImages: 0, promptTokens: 0, imageOutputTokens: 0, otherOutputTokens: 0, costPico: 0n };
    const counts = tokenCountsOf(billing);
    const price = prices.priceOf(row.model, now);
    const cost = price ? billedCostPico(billing, price) : undefined;
    line.rows += 1;
    line.billedImages += billing.images?.count ?? 0;
    line.promptTokens += counts.promptTokens;
    line.imageOutputTokens += counts.imageOutputTokens;
    line.otherOutputTokens += counts.textOutputTokens + counts.thoughtsTokens;
    if (cost !== undefined && line.costPico !== undefined) line.costPico += cost;
    else if (cost === undefined) {
      line.costPico = undefined;
      unpriced.add(row.model);
    }
    byKey.set(key, line);
  }
  const lines = [...byKey.values()].sort((a, b) => a.model.localeCompare(b.model) || a.imageSize.localeCompare(b.imageSize));
  return { lines, rows: count, costPico: lines.reduce((sum, line) => sum + (line.costPico ?? 0n), 0n), unpricedModels: [...unpriced] };
}
