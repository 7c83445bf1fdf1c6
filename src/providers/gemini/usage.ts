/**
 * usageMetadata → the token counts of the cost rule. The candidates details may list only the
 * IMAGE entry: the rest of candidatesTokenCount is text.
 */
import type { TokenCounts, UsageMetadata } from '../../core/types.js';

const count = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

export function geminiTokenCounts(usage: UsageMetadata): TokenCounts {
  const promptTokens = count(usage.promptTokenCount);
  const candidates = count(usage.candidatesTokenCount);
  const thoughtsTokens = count(usage.thoughtsTokenCount);
  const details = Array.isArray(usage.candidatesTokensDetails) ? usage.candidatesTokensDetails : [];
  const imageOutputTokens = details
    .filter((detail) => detail?.modality === 'IMAGE')
    .reduce((sum, detail) => sum + count(detail?.tokenCount), 0);
  const toolUse = count(usage.toolUsePromptTokenCount);
  return {
    promptTokens,
    imageOutputTokens,
    textOutputTokens: Math.max(0, candidates - imageOutputTokens),
    thoughtsTokens,
    totalTokens: count(usage.totalTokenCount) || promptTokens + candidates + thoughtsTokens + toolUse,
  };
}
