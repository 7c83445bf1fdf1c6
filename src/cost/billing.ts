/**
 * What one billed answer is billed as, whatever its provider: the record the cost rule prices.
 * A provider turns the usage it received into one (src/providers/<name>/), the ledger keeps it
 * beside that usage, and reports, budgets and views read only this.
 */
import type { BillingRecord, TokenCounts } from '../core/types.js';

// The record's shape is one of the words of the whole tool (core/types.ts); its arithmetic is here.
export type { BilledTokens, BillingRecord } from '../core/types.js';

/** The report's token fields of one billing record (zeros for a provider that bills by image). */
export function tokenCountsOf(billing: BillingRecord): TokenCounts {
  const tokens = billing.tokens;
  if (!tokens) return { promptTokens: 0, imageOutputTokens: 0, textOutputTokens: 0, thoughtsTokens: 0, totalTokens: 0 };
  const promptTokens = tokens.inputText + tokens.inputImage;
  return {
    promptTokens,
    imageOutputTokens: tokens.outputImage,
    textOutputTokens: tokens.outputText,
    thoughtsTokens: tokens.thinking,
    totalTokens: tokens.total || promptTokens + tokens.outputText + tokens.outputImage + tokens.thinking,
  };
}
