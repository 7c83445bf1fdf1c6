/**
 * Gemini's usageMetadata → the billing record. The candidates details may list only the IMAGE
 * entry: the rest of candidatesTokenCount is text. Thinking is billed apart from candidates.
 */
import { tokenCountsOf, type BillingRecord } from '../../cost/billing.js';
import type { TokenCounts, UsageMetadata } from '../../core/types.js';

const count = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

/** Tokens of one modality in a details list (a gateway may send `null` for the list or an entry). */
function modalityTokens(details: UsageMetadata['promptTokensDetails'], modality: string): number {
  if (!Array.isArray(details)) return 0;
  return details.filter((detail) => detail?.modality === modality).reduce((sum, detail) => sum + count(detail?.tokenCount), 0);
}

/** The report's token fields of one usageMetadata. */
export function geminiTokenCounts(usage: UsageMetadata): TokenCounts {
  return tokenCountsOf(geminiBilling(usage));
}

export function geminiBilling(usage: UsageMetadata): BillingRecord {
  const prompt = count(usage.promptTokenCount);
  const candidates = count(usage.candidatesTokenCount);
  const inputImage = Math.min(prompt, modalityTokens(usage.promptTokensDetails, 'IMAGE'));
  const outputImage = modalityTokens(usage.candidatesTokensDetails, 'IMAGE');
  const thinking = count(usage.thoughtsTokenCount);
  const reported = count(usage.totalTokenCount);
  return {
    tokens: {
      inputText: prompt - inputImage,
      inputImage,
      outputText: Math.max(0, candidates - outputImage),
      outputImage,
      thinking,
      total: reported || prompt + candidates + thinking + count(usage.toolUsePromptTokenCount),
    },
  };
}
