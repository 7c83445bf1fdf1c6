/**
 * What a row for one of the images endpoint's models (design.md section 1b) is expected to be
 * billed as, before anything is sent: Seedream one `image`, DALL·E one image of its native
 * `SIZE/QUALITY`, GPT Image the output tokens of its size and quality. The row's native size and
 * billed quality are the provider's (providers/openai-images/models.ts), so the estimate prices
 * the request the run will send.
 */
import { billedQuality, nativeSize, type ImagesModel } from '../providers/openai-images/models.js';
import type { BillingRecord } from './billing.js';

type GptQuality = 'low' | 'medium' | 'high';

/**
 * Output (image) tokens of one GPT Image picture by quality, for a square and for a 2:3 or 3:2
 * size. Source: OpenAI's image generation guide, "Cost and latency" table for the gpt-image-1
 * family (1024x1024: low 272, medium 1056, high 4160; 1024x1536 and 1536x1024: low 408, medium
 * 1584, high 6240), read 2026.
 */
export const GPT_IMAGE_OUTPUT_TOKENS: Readonly<Record<'square' | 'portraitOrLandscape', Readonly<Record<GptQuality, number>>>> = {
  square: { low: 272, medium: 1056, high: 4160 },
  portraitOrLandscape: { low: 408, medium: 1584, high: 6240 },
};

/** The row fields that decide the size and quality. */
export interface ImageOptions {
  aspectRatio?: string | undefined;
  imageSize?: string | undefined;
  size?: string | undefined;
  quality?: string | undefined;
}

/** `WxH` → pixels; `auto` (the model picks) is counted as a square. */
function pixelsOf(size: string): { width: number; height: number } {
  const match = /^(\d{1,5})x(\d{1,5})$/.exec(size);
  return match ? { width: Number(match[1]), height: Number(match[2]) } : { width: 1024, height: 1024 };
}

/**
 * Output tokens of a GPT Image picture: the published figures for the preset sizes; other sizes
 * (gpt-image-2) scaled by their pixels from the published shape nearest theirs. `auto` quality
 * (or none) is counted as high, the dearest, which is what it most often comes out as.
 */
export function gptImageOutputTokens(size: string, quality: string | undefined): number {
  const tier: GptQuality = quality === 'low' || quality === 'medium' ? quality : 'high';
  const { width, height } = pixelsOf(size);
  const shape = width === height ? 'square' : 'portraitOrLandscape';
  const basePixels = shape === 'square' ? 1024 * 1024 : 1024 * 1536;
  return Math.ceil((GPT_IMAGE_OUTPUT_TOKENS[shape][tier] * width * height) / basePixels);
}

/** What the row's answer is expected to be billed as, and the size it is shown under. */
export interface ImagesEstimate {
  billing: BillingRecord;
  /** The native size (and quality) the row is sent with, as the estimate table shows it. */
  size: string;
}

/**
 * The expected billing record of one row of an images-endpoint model: one picture per row (the
 * provider asks `n: 1`). `inputTokens` are the prompt's and reference images' tokens, billed by
 * GPT Image only.
 */
export function estimateImagesRow(model: ImagesModel, row: ImageOptions, inputTokens: { text: number; image: number }): ImagesEstimate {
  const size = nativeSize(model, row);
  switch (model.family) {
    case 'seedream':
      return { billing: { images: { count: 1, unit: 'image' } }, size };
    case 'dall-e': {
      const unit = `${size}/${billedQuality(model, row.quality) ?? 'standard'}`;
      return { billing: { images: { count: 1, unit } }, size: unit };
    }
    case 'gpt-image': {
      const quality = row.quality ?? 'auto';
      return {
        billing: { tokens: { inputText: inputTokens.text, inputImage: inputTokens.image, outputText: 0, outputImage: gptImageOutputTokens(size, quality), thinking: 0 } },
        size: `${size}/${quality}`,
      };
    }
  }
}
