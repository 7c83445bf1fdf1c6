/**
 * The mock's `usageMetadata`: the same arithmetic the provider documents, deterministic per
 * prompt so tests can predict it, with the real quirk that `candidatesTokensDetails` lists
 * only the IMAGE share (the rest of `candidatesTokenCount` is text).
 */
import type { ModelCapabilities } from '../providers/models.js';
import type { ModalityTokenCount, UsageMetadata } from '../core/types.js';
import { ESTIMATE_ASSUMPTIONS } from '../cost/estimate.js';
import { pick, seedOf } from './seed.js';

/** What one reference image costs in prompt tokens (the same figure `estimate` assumes). */
export const TOKENS_PER_REFERENCE_IMAGE = ESTIMATE_ASSUMPTIONS.tokensPerReferenceImage;

export interface UsageInput {
  model: ModelCapabilities;
  prompt: string;
  referenceImages: number;
  imageSize: string;
  finalImages: number;
  /** Whether the answer has a (non-thought) text part. */
  textPart: boolean;
  /** List TEXT in candidatesTokensDetails too (`[mock:text-details]`). */
  textDetails: boolean;
}

export function promptTokens(prompt: string): number {
  return Math.ceil(Buffer.byteLength(prompt, 'utf8') / 4);
}

function promptPart(prompt: string, referenceImages: number): { count: number; details: ModalityTokenCount[] } {
  const text = promptTokens(prompt);
  const details: ModalityTokenCount[] = [{ modality: 'TEXT', tokenCount: text }];
  const images = referenceImages * TOKENS_PER_REFERENCE_IMAGE;
  if (images > 0) details.push({ modality: 'IMAGE', tokenCount: images });
  return { count: text + images, details };
}

/** A blocked prompt is billed for its prompt only. */
export function blockedUsage(prompt: string, referenceImages: number): UsageMetadata {
  const { count, details } = promptPart(prompt, referenceImages);
  return { promptTokenCount: count, totalTokenCount: count, promptTokensDetails: details };
}

/** Text tokens of the answer's text part: 8-40, from the prompt. */
export function textTokens(prompt: string): number {
  return pick(seedOf(prompt), 2, 8, 40);
}

/** Thinking tokens: 100-600 for Gemini 3 models (which think), none for 2.5 flash. */
export function thoughtTokens(model: ModelCapabilities, prompt: string): number {
  return model.thoughtImages ? pick(seedOf(prompt), 3, 100, 600) : 0;
}

export function answerUsage(input: UsageInput): UsageMetadata {
  const prompt = promptPart(input.prompt, input.referenceImages);
  const image = (input.model.imageTokens[input.imageSize] ?? 0) * input.finalImages;
  const text = input.textPart ? textTokens(input.prompt) : 0;
  const thoughts = thoughtTokens(input.model, input.prompt);
  const candidates = image + text;
  const candidatesDetails: ModalityTokenCount[] = [];
  if (input.textDetails || image === 0) candidatesDetails.push({ modality: 'TEXT', tokenCount: text });
  if (image > 0) candidatesDetails.push({ modality: 'IMAGE', tokenCount: image });
  const usage: UsageMetadata = {
    promptTokenCount: prompt.count,
    candidatesTokenCount: candidates,
    totalTokenCount: prompt.count + candidates + thoughts,
    promptTokensDetails: prompt.details,
    candidatesTokensDetails: candidatesDetails,
  };
  // The real 2.5 flash leaves the field out rather than sending 0.
  if (thoughts > 0) usage.thoughtsTokenCount = thoughts;
  return usage;
}
