/**
 * What one billed answer is billed as, whatever its provider: the record the cost rule prices.
 * A provider turns the usage it received into one (src/providers/<name>/), the ledger keeps it
 * beside that usage, and reports, budgets and views read only this.
 */
import type { TokenCounts } from '../core/types.js';

/** Tokens billed by kind, where the provider bills tokens. */
export interface BilledTokens {
  inputText: number;
  inputImage: number;
  outputText: number;
  outputImage: number;
  thinking: number;
  /** The total as the provider reported it, when it did (it may count kinds not listed here). */
  total?: number;
}

export interface BillingRecord {
  tokens?: BilledTokens;
  /** Images billed by the piece, with the unit their price is given for (`image`, `1024x1024/hd`). */
  images?: { count: number; unit: string };
}

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
