/**
 * The images endpoint's models as the mock serves them, after design.md section 1b: sizes,
 * qualities, formats and limits per model. The mock keeps its own copy of these facts (it is
 * the stand-in for the real service), so the product's model table is checked against it
 * rather than against itself.
 */

export type ImagesFamily = 'seedream' | 'gpt-image' | 'dall-e';

export type OutputFormat = 'png' | 'jpeg' | 'webp';

export type ResponseFormat = 'url' | 'b64_json';

export interface ImagesModel {
  id: string;
  family: ImagesFamily;
  /** Size names the model takes and the pixels they make. */
  presets: Readonly<Record<string, readonly [number, number]>>;
  /** Why a `WxH` that is not a preset is refused, or undefined when it is fine; absent: presets only. */
  freeSize?: (width: number, height: number) => string | undefined;
  defaultSize: string;
  /** Empty: the model has no `quality` (Seedream: the field is dropped as unknown). */
  qualities: readonly string[];
  defaultQuality?: string;
  /** Formats `output_format` may ask for; empty: the field is not the model's, it answers `fixedFormat`. */
  outputFormats: readonly OutputFormat[];
  defaultFormat: OutputFormat;
  responseFormats: readonly ResponseFormat[];
  defaultResponseFormat: ResponseFormat;
  styles: readonly string[];
  backgrounds: readonly string[];
  /** Largest `n`. */
  maxImages: number;
  /** Reference images: Seedream in the JSON `image` field, the others through /v1/images/edits. */
  maxReferenceImages: number;
  /** Served on /v1/images/edits (multipart, `image[]`). */
  edits: boolean;
  maxPromptChars: number;
  /** How long a `url` answer's link works: Seedream 24 h, OpenAI-hosted 1 h. */
  linkTtlMs: number;
}

const HOUR = 3_600_000;

const SEEDREAM_MAX_PIXELS = 16_777_216;

/** Seedream's `WxH` rule: total pixels within bounds (per model) and a ratio within 1:16..16:1. */
function seedreamSize(minPixels: number): (width: number, height: number) => string | undefined {
  return (width, height) => {
    const pixels = width * height;
    if (pixels < minPixels || pixels > SEEDREAM_MAX_PIXELS) {
      return `total pixels ${pixels} not within [${minPixels}, ${SEEDREAM_MAX_PIXELS}]`;
    }
    const ratio = width / height;
    if (ratio < 1 / 16 || ratio > 16) return `aspect ratio ${width}:${height} not within [1:16, 16:1]`;
    return undefined;
  };
}

/** gpt-image-2 takes sizes beyond the three presets: multiples of 16, long side at most 3840. */
function gptImage2Size(width: number, height: number): string | undefined {
  if (width % 16 !== 0 || height % 16 !== 0) return 'width and height must be multiples of 16';
  if (Math.max(width, height) > 3840) return 'the long side must be at most 3840';
  return undefined;
}

const square = (side: number): readonly [number, number] => [side, side];

const SEEDREAM: Omit<ImagesModel, 'id' | 'presets' | 'freeSize' | 'outputFormats' | 'defaultFormat'> = {
  family: 'seedream',
  defaultSize: '2048x2048',
  qualities: [],
  responseFormats: ['url', 'b64_json'],
  defaultResponseFormat: 'url',
  styles: [],
  backgrounds: [],
  // Group mode through the gateway: `n` images (references and results at most 15 together).
  maxImages: 15,
  maxReferenceImages: 14,
  edits: false,
  // No hard limit (the docs advise under 600 words).
  maxPromptChars: Infinity,
  linkTtlMs: 24 * HOUR,
};

const GPT_IMAGE: Omit<ImagesModel, 'id' | 'freeSize' | 'backgrounds'> = {
  family: 'gpt-image',
  presets: { '1024x1024': square(1024), '1536x1024': [1536, 1024], '1024x1536': [1024, 1536], auto: square(1024) },
  defaultSize: 'auto',
  qualities: ['low', 'medium', 'high', 'auto'],
  defaultQuality: 'auto',
  outputFormats: ['png', 'jpeg', 'webp'],
  defaultFormat: 'png',
  // OpenAI answers base64 only; Tokenhot's example shows a link: the mock does both.
  responseFormats: ['b64_json', 'url'],
  defaultResponseFormat: 'b64_json',
  styles: [],
  maxImages: 10,
  maxReferenceImages: 16,
  edits: true,
  maxPromptChars: 32_000,
  linkTtlMs: HOUR,
};

const DALL_E: Omit<ImagesModel, 'id' | 'presets' | 'defaultSize' | 'qualities' | 'defaultQuality' | 'styles' | 'maxImages' | 'maxReferenceImages' | 'edits' | 'maxPromptChars'> = {
  family: 'dall-e',
  outputFormats: [],
  defaultFormat: 'png',
  responseFormats: ['url', 'b64_json'],
  defaultResponseFormat: 'url',
  backgrounds: [],
  linkTtlMs: HOUR,
};

export const IMAGES_MODELS: readonly ImagesModel[] = [
  {
    ...SEEDREAM,
    id: 'doubao-seedream-4-0-250828',
    presets: { '1K': square(1024), '2K': square(2048), '4K': square(4096) },
    freeSize: seedreamSize(921_600),
    outputFormats: [],
    defaultFormat: 'jpeg',
  },
  {
    ...SEEDREAM,
    id: 'doubao-seedream-4-5-251128',
    presets: { '2K': square(2048), '4K': square(4096) },
    freeSize: seedreamSize(3_686_400),
    outputFormats: [],
    defaultFormat: 'jpeg',
  },
  {
    ...SEEDREAM,
    id: 'doubao-seedream-5-0-260128',
    presets: { '2K': square(2048), '3K': square(3072) },
    freeSize: seedreamSize(3_686_400),
    outputFormats: ['jpeg', 'png'],
    defaultFormat: 'jpeg',
  },
  { ...GPT_IMAGE, id: 'gpt-image-1.5', backgrounds: ['transparent', 'opaque', 'auto'] },
  { ...GPT_IMAGE, id: 'gpt-image-2', freeSize: gptImage2Size, backgrounds: ['opaque', 'auto'] },
  {
    ...DALL_E,
    id: 'dall-e-3',
    presets: { '1024x1024': square(1024), '1792x1024': [1792, 1024], '1024x1792': [1024, 1792] },
    defaultSize: '1024x1024',
    qualities: ['standard', 'hd'],
    defaultQuality: 'standard',
    styles: ['vivid', 'natural'],
    maxImages: 1,
    maxReferenceImages: 0,
    edits: false,
    maxPromptChars: 4000,
  },
  {
    ...DALL_E,
    id: 'dall-e-2',
    presets: { '256x256': square(256), '512x512': square(512), '1024x1024': square(1024) },
    defaultSize: '1024x1024',
    qualities: ['standard'],
    defaultQuality: 'standard',
    styles: [],
    maxImages: 10,
    maxReferenceImages: 1,
    edits: true,
    maxPromptChars: 1000,
  },
];

export function findImagesModel(id: string): ImagesModel | undefined {
  return IMAGES_MODELS.find((model) => model.id === id);
}

/** What `auto` quality resolves to: the dearest, as OpenAI picks it for most prompts. */
export const AUTO_QUALITY = 'high';

/** The pixels a `size` names for a model, or why the model refuses it. */
export function resolveSize(model: ImagesModel, size: string): { width: number; height: number } | { refused: string } {
  const preset = model.presets[size];
  if (preset) return { width: preset[0], height: preset[1] };
  const match = /^(\d{1,5})x(\d{1,5})$/.exec(size);
  if (!match || !model.freeSize) return { refused: `size ${size} is not one of ${Object.keys(model.presets).join(', ')}` };
  const width = Number(match[1]);
  const height = Number(match[2]);
  const why = width > 0 && height > 0 ? model.freeSize(width, height) : 'width and height must be positive';
  return why ? { refused: `size ${size}: ${why}` } : { width, height };
}
