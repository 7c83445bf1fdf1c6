/**
 * The `usage` objects of the images endpoint, deterministic per prompt so tests can predict
 * them: Seedream counts images (and pixels/256 tokens), GPT Image counts tokens by quality and
 * size, DALL-E sends none.
 */
import type { MockBilling } from '../records.js';
import { pick, seedOf } from '../seed.js';
import { promptTokens } from '../usage.js';

/** Volcengine's rule for Seedream's `output_tokens`: a picture's width x height / 256. */
export function seedreamImageTokens(width: number, height: number): number {
  return Math.floor((width * height) / 256);
}

/**
 * What Seedream reports for `images` pictures made; as a gateway may rewrite it: no
 * `generated_images`, prompt/completion tokens of 0.
 */
export function seedreamUsage(images: number, width: number, height: number, gateway: boolean): Record<string, unknown> {
  if (gateway) return { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  const tokens = images * seedreamImageTokens(width, height);
  return { generated_images: images, output_tokens: tokens, total_tokens: tokens };
}

/** GPT Image output tokens of one picture, from OpenAI's published table (1024-px sizes). */
const GPT_IMAGE_TOKENS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  low: { '1024x1024': 272, '1024x1536': 408, '1536x1024': 400 },
  medium: { '1024x1024': 1056, '1024x1536': 1584, '1536x1024': 1568 },
  high: { '1024x1024': 4160, '1024x1536': 6240, '1536x1024': 6208 },
};

/** Input tokens of one reference image on /v1/images/edits (a fixed figure; real ones vary with size). */
export const GPT_TOKENS_PER_REFERENCE_IMAGE = 388;

/** Other sizes (gpt-image-2) cost in proportion to their area. */
export function gptImageTokens(quality: string, width: number, height: number): number {
  const table = GPT_IMAGE_TOKENS[quality] ?? GPT_IMAGE_TOKENS.high!;
  return table[`${width}x${height}`] ?? Math.round(((table['1024x1024'] ?? 0) * width * height) / (1024 * 1024));
}

export interface GptUsageInput {
  prompt: string;
  referenceImages: number;
  quality: string;
  width: number;
  height: number;
  images: number;
  /** `[mock:text-details]`: some text output, listed in `output_tokens_details`. */
  textDetails: boolean;
}

export interface GptUsage {
  usage: Record<string, unknown>;
  tokens: NonNullable<MockBilling['tokens']>;
}

export function gptUsage(input: GptUsageInput): GptUsage {
  const inputText = promptTokens(input.prompt);
  const inputImage = input.referenceImages * GPT_TOKENS_PER_REFERENCE_IMAGE;
  const outputImage = input.images * gptImageTokens(input.quality, input.width, input.height);
  const outputText = input.textDetails ? pick(seedOf(input.prompt), 4, 8, 40) : 0;
  const total = inputText + inputImage + outputImage + outputText;
  const usage: Record<string, unknown> = {
    input_tokens: inputText + inputImage,
    input_tokens_details: { image_tokens: inputImage, text_tokens: inputText },
    output_tokens: outputImage + outputText,
    total_tokens: total,
  };
  if (input.textDetails) usage.output_tokens_details = { image_tokens: outputImage, text_tokens: outputText };
  return { usage, tokens: { inputText, inputImage, outputText, outputImage, thinking: 0, total } };
}
