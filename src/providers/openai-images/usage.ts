/**
 * The images endpoint's `usage` → the billing record (design11: the seam). GPT Image bills tokens;
 * Seedream bills each generated image; DALL·E bills each image by size and quality and sends no
 * usage at all. Gateways re-serialize usage (Seedream's `generated_images` becomes
 * `prompt_tokens: 0, completion_tokens: 0` on some), so every field may be missing.
 */
import type { BillingRecord } from '../../cost/billing.js';
import type { ImagesModel } from './models.js';

type Fields = Record<string, unknown>;

const count = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0);
const isObject = (value: unknown): value is Fields => typeof value === 'object' && value !== null && !Array.isArray(value);

export interface BilledImages {
  /** Images the answer holds (failed group images not counted). */
  images: number;
  /** The `size` asked for, and the quality billed (DALL·E's unit). */
  size: string;
  quality?: string;
}

/** GPT Image tokens: input split by `input_tokens_details`, output by `output_tokens_details` when given (else all image). */
function gptImageTokens(usage: Fields): BillingRecord['tokens'] {
  const input = count(usage.input_tokens);
  const output = count(usage.output_tokens);
  const inputDetails = isObject(usage.input_tokens_details) ? usage.input_tokens_details : undefined;
  const outputDetails = isObject(usage.output_tokens_details) ? usage.output_tokens_details : undefined;
  const inputImage = inputDetails ? Math.min(input, count(inputDetails.image_tokens)) : 0;
  const inputText = inputDetails && inputDetails.text_tokens !== undefined ? count(inputDetails.text_tokens) : input - inputImage;
  const outputText = outputDetails ? Math.min(output, count(outputDetails.text_tokens)) : 0;
  const outputImage = outputDetails && outputDetails.image_tokens !== undefined ? count(outputDetails.image_tokens) : output - outputText;
  return { inputText, inputImage, outputText, outputImage, thinking: 0, total: count(usage.total_tokens) || input + output };
}

export function imagesBilling(model: ImagesModel, usage: Fields | undefined, billed: BilledImages): BillingRecord {
  switch (model.family) {
    case 'gpt-image':
      // A gateway that drops the usage still bills: the images then stand unpriced, never at $0.
      return usage && (usage.input_tokens !== undefined || usage.output_tokens !== undefined)
        ? { tokens: gptImageTokens(usage) }
        : { images: { count: billed.images, unit: `${billed.size}/${billed.quality ?? 'auto'}` } };
    case 'seedream':
      return { images: { count: usage && typeof usage.generated_images === 'number' ? count(usage.generated_images) : billed.images, unit: 'image' } };
    case 'dall-e':
      return { images: { count: billed.images, unit: `${billed.size}/${billed.quality ?? 'standard'}` } };
  }
}
