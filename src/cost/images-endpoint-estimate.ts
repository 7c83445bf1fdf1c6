/**
 * What a row for one of the images endpoint's models (design.md section 1b) is expected to be
 * billed as, before anything is sent: Seedream one `image`, DALL·E one image of its native
 * `SIZE/QUALITY`, GPT Image the output tokens of its size and quality.
 *
 * The row → native size mapping here is a small local stand-in: the provider
 * (src/providers/openai-images/) owns how a row's aspect_ratio, image_size, size and quality
 * become a request, and the estimate should take its mapping once it is there.
 */
import type { BillingRecord } from './billing.js';

export type ImagesFamily = 'seedream' | 'gpt-image' | 'dall-e';

const FAMILIES: Readonly<Record<string, ImagesFamily>> = {
  'doubao-seedream-4-0-250828': 'seedream',
  'doubao-seedream-4-5-251128': 'seedream',
  'doubao-seedream-5-0-260128': 'seedream',
  'gpt-image-1.5': 'gpt-image',
  'gpt-image-2': 'gpt-image',
  'dall-e-3': 'dall-e',
  'dall-e-2': 'dall-e',
};

/** The images endpoint's family of `model`, or undefined for a model of another provider. */
export function imagesFamilyOf(model: string): ImagesFamily | undefined {
  return Object.hasOwn(FAMILIES, model) ? FAMILIES[model] : undefined;
}

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

type GptQuality = 'low' | 'medium' | 'high';

/** The row fields that decide the size and quality. */
export interface ImageOptions {
  aspectRatio?: string | undefined;
  imageSize?: string | undefined;
  size?: string | undefined;
  quality?: string | undefined;
}

/** Width over height of `W:H` or `WxH`; undefined when it is neither. */
function ratioOf(text: string | undefined): number | undefined {
  const match = text?.trim().match(/^(\d+(?:\.\d+)?)\s*[:x×]\s*(\d+(?:\.\d+)?)$/i);
  if (!match) return undefined;
  const ratio = Number(match[1]) / Number(match[2]);
  return Number.isFinite(ratio) && ratio > 0 ? ratio : undefined;
}

const orientation = (ratio: number | undefined): 'square' | 'landscape' | 'portrait' =>
  ratio === undefined || Math.abs(Math.log(ratio)) < 0.1 ? 'square' : ratio > 1 ? 'landscape' : 'portrait';

/** `WxH` → pixels, or undefined. */
function pixelsOf(size: string): { width: number; height: number } | undefined {
  const match = /^(\d{1,5})x(\d{1,5})$/.exec(size);
  return match ? { width: Number(match[1]), height: Number(match[2]) } : undefined;
}

const DALL_E_3_SIZES = { square: '1024x1024', landscape: '1792x1024', portrait: '1024x1792' } as const;
const DALL_E_2_SIZES = ['256x256', '512x512', '1024x1024'] as const;
const GPT_SIZES = { square: '1024x1024', landscape: '1536x1024', portrait: '1024x1536' } as const;

/** The DALL·E unit a row is billed as: its native size (asked, or nearest its aspect ratio) and quality. */
function dallEUnit(model: string, options: ImageOptions): string {
  const size = options.size?.trim().toLowerCase();
  if (model === 'dall-e-2') {
    // dall-e-2 makes squares only; a `512` image size names one.
    const asked = size ?? (options.imageSize ? `${options.imageSize}x${options.imageSize}` : undefined);
    const native = DALL_E_2_SIZES.find((candidate) => candidate === asked) ?? '1024x1024';
    return `${native}/standard`;
  }
  const native = (Object.values(DALL_E_3_SIZES) as string[]).includes(size ?? '') ? size! : DALL_E_3_SIZES[orientation(ratioOf(size) ?? ratioOf(options.aspectRatio))];
  return `${native}/${options.quality?.trim().toLowerCase() === 'hd' ? 'hd' : 'standard'}`;
}

/** The size and quality a GPT Image row asks for; `auto` (or none) is estimated as high, the dearest. */
export function gptImageSize(options: ImageOptions): { size: string; quality: GptQuality } {
  const asked = options.size?.trim().toLowerCase();
  const size = asked !== undefined && asked !== 'auto' && pixelsOf(asked) ? asked : GPT_SIZES[orientation(ratioOf(asked) ?? ratioOf(options.aspectRatio))];
  const quality = options.quality?.trim().toLowerCase();
  return { size, quality: quality === 'low' || quality === 'medium' ? quality : 'high' };
}

/**
 * Output tokens of a GPT Image picture: the published figures for the three preset sizes; other
 * sizes (gpt-image-2) scaled by their pixels from the nearest published shape.
 */
export function gptImageOutputTokens(size: string, quality: GptQuality): number {
  const pixels = pixelsOf(size) ?? { width: 1024, height: 1024 };
  const shape = pixels.width === pixels.height ? 'square' : 'portraitOrLandscape';
  const base = GPT_IMAGE_OUTPUT_TOKENS[shape][quality];
  const basePixels = shape === 'square' ? 1024 * 1024 : 1024 * 1536;
  return Math.ceil((base * pixels.width * pixels.height) / basePixels);
}

/** What the row's answer is expected to be billed as, and the size it is shown under. */
export interface ImagesEstimate {
  billing: BillingRecord;
  /** The native size (and quality) the row maps to, as the estimate table shows it. */
  size: string;
}

/**
 * The expected billing record of one row of an images-endpoint model: one picture per row.
 * `inputTokens` are the prompt's (and reference images') tokens, billed by GPT Image only.
 */
export function estimateImagesRow(family: ImagesFamily, model: string, options: ImageOptions, inputTokens: { text: number; image: number }): ImagesEstimate {
  switch (family) {
    case 'seedream':
      return { billing: { images: { count: 1, unit: 'image' } }, size: options.size ?? options.imageSize ?? '-' };
    case 'dall-e': {
      const unit = dallEUnit(model, options);
      return { billing: { images: { count: 1, unit } }, size: unit };
    }
    case 'gpt-image': {
      const { size, quality } = gptImageSize(options);
      const outputImage = gptImageOutputTokens(size, quality);
      return {
        billing: { tokens: { inputText: inputTokens.text, inputImage: inputTokens.image, outputText: 0, outputImage, thinking: 0 } },
        size: `${size}/${quality}`,
      };
    }
  }
}
