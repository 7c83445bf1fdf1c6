/**
 * What each model of the OpenAI-style images endpoint accepts (design.md 1b), and the one table
 * that maps the CSV's common options to each model's native `size`: a row keeps one format for
 * every model (`aspect_ratio` and `image_size`, or an exact `size`), and an option a model cannot
 * honour is refused by column, naming what the model can.
 */
import type { ModelCapabilities } from '../capabilities.js';
import { quoted, type CheckedOptions, type ReferenceRules, type RowOptionCells } from '../row-options.js';

export type ImagesFamily = 'seedream' | 'gpt-image' | 'dall-e';

/** Exact `WxH` sizes a model takes besides its listed ones; the reason a size breaks the rule. */
interface SizeRule {
  words: string;
  check(width: number, height: number): string | undefined;
}

export interface ImagesModel {
  id: string;
  family: ImagesFamily;
  /**
   * The native `size` by image size, then aspect ratio. Models without image sizes (GPT Image,
   * DALL·E) have one row, keyed `''`.
   */
  sizeTable: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** The image size of a row that gives an aspect ratio but none. */
  defaultImageSize: string;
  /** The `size` sent for a row that gives no size option at all: the model's own default. */
  defaultSize: string;
  /** Size names the API takes as they are (Seedream's `2K`: the model picks the ratio from the prompt). */
  presets: readonly string[];
  /** Exact sizes taken beyond the table (Seedream: a pixel range; gpt-image-2: multiples of 16). */
  sizeRule?: SizeRule;
  /** Empty: the model takes no `quality`. */
  qualities: readonly string[];
  /** The quality billed when a row names none (DALL·E prices `standard` and `hd`). */
  defaultQuality?: string;
  /** Asked for where the model takes `response_format`; GPT Image takes none (and answers base64). */
  responseFormat?: 'b64_json';
  /** Sent as `output_format` where the model takes it. */
  outputFormat?: 'png';
  /** Seedream marks its images unless told not to. */
  watermark?: false;
  /** `body`: data URIs in the JSON `image` field (Seedream); `edits`: multipart to /v1/images/edits. */
  referencesVia: 'body' | 'edits' | 'none';
  references: ReferenceRules;
  /** What the model usually answers (for the mock and estimates; answers are sniffed, never assumed). */
  outputMimeType: 'image/jpeg' | 'image/png';
}

const MB = 1024 * 1024;
const SEEDREAM_MAX_PIXELS = 16_777_216;

/** Seedream's recommended pixels per ratio, by tier (BytePlus ModelArk's tables). */
const SEEDREAM_1K = { '1:1': '1024x1024', '4:3': '1152x864', '3:4': '864x1152', '16:9': '1280x720', '9:16': '720x1280', '3:2': '1248x832', '2:3': '832x1248', '21:9': '1512x648' };
const SEEDREAM_2K = { '1:1': '2048x2048', '4:3': '2304x1728', '3:4': '1728x2304', '16:9': '2848x1600', '9:16': '1600x2848', '3:2': '2496x1664', '2:3': '1664x2496', '21:9': '3136x1344' };
const SEEDREAM_3K = { '1:1': '3072x3072', '4:3': '3456x2592', '3:4': '2592x3456', '16:9': '4096x2304', '9:16': '2304x4096', '3:2': '3744x2496', '2:3': '2496x3744', '21:9': '4704x2016' };
// Not quite double the 2K sides: each stays under the 16,777,216-pixel ceiling.
const SEEDREAM_4K = { '1:1': '4096x4096', '4:3': '4704x3520', '3:4': '3520x4704', '16:9': '5504x3040', '9:16': '3040x5504', '3:2': '4992x3328', '2:3': '3328x4992', '21:9': '6240x2656' };

function seedreamRule(minPixels: number): SizeRule {
  return {
    words: `WxH of ${minPixels.toLocaleString('en-US')} to ${SEEDREAM_MAX_PIXELS.toLocaleString('en-US')} pixels, ratio within 1:16..16:1`,
    check(width, height) {
      const pixels = width * height;
      if (pixels < minPixels || pixels > SEEDREAM_MAX_PIXELS) return `${pixels.toLocaleString('en-US')} pixels`;
      if (width / height > 16 || height / width > 16) return 'a ratio beyond 16:1';
      return undefined;
    },
  };
}

const SEEDREAM_REFERENCES: ReferenceRules = {
  max: 14,
  mimeTypes: ['image/png', 'image/jpeg', 'image/webp', 'image/gif'],
  typeNames: 'PNG, JPEG, WebP or GIF',
  maxBytesEach: 10 * MB,
};

const SEEDREAM = {
  family: 'seedream',
  defaultImageSize: '2K',
  defaultSize: '2048x2048',
  qualities: [],
  responseFormat: 'b64_json',
  watermark: false,
  referencesVia: 'body',
  references: SEEDREAM_REFERENCES,
  outputMimeType: 'image/jpeg',
} as const;

const GPT_IMAGE = {
  family: 'gpt-image',
  sizeTable: { '': { '1:1': '1024x1024', '3:2': '1536x1024', '2:3': '1024x1536' } },
  defaultImageSize: '',
  defaultSize: 'auto',
  presets: ['auto'],
  qualities: ['low', 'medium', 'high', 'auto'],
  outputFormat: 'png',
  referencesVia: 'edits',
  references: { max: 16, mimeTypes: ['image/png', 'image/jpeg', 'image/webp'], typeNames: 'PNG, JPEG or WebP', maxBytesEach: 50 * MB },
  outputMimeType: 'image/png',
} as const;

const NO_REFERENCES: ReferenceRules = { max: 0, mimeTypes: [], typeNames: 'none' };

export const IMAGES_MODELS: readonly ImagesModel[] = [
  { ...SEEDREAM, id: 'doubao-seedream-4-0-250828', sizeTable: { '1K': SEEDREAM_1K, '2K': SEEDREAM_2K, '4K': SEEDREAM_4K }, presets: ['1K', '2K', '4K'], sizeRule: seedreamRule(921_600) },
  { ...SEEDREAM, id: 'doubao-seedream-4-5-251128', sizeTable: { '2K': SEEDREAM_2K, '4K': SEEDREAM_4K }, presets: ['2K', '4K'], sizeRule: seedreamRule(3_686_400) },
  { ...SEEDREAM, id: 'doubao-seedream-5-0-260128', sizeTable: { '2K': SEEDREAM_2K, '3K': SEEDREAM_3K }, presets: ['2K', '3K'], sizeRule: seedreamRule(3_686_400) },
  { ...GPT_IMAGE, id: 'gpt-image-1.5' },
  {
    ...GPT_IMAGE,
    id: 'gpt-image-2',
    sizeRule: {
      words: 'WxH in multiples of 16, long side at most 3840',
      check: (width, height) => (width % 16 !== 0 || height % 16 !== 0 ? 'not multiples of 16' : Math.max(width, height) > 3840 ? 'a side over 3840' : undefined),
    },
  },
  {
    id: 'dall-e-3',
    family: 'dall-e',
    sizeTable: { '': { '1:1': '1024x1024', '16:9': '1792x1024', '9:16': '1024x1792' } },
    defaultImageSize: '',
    defaultSize: '1024x1024',
    presets: [],
    qualities: ['standard', 'hd'],
    defaultQuality: 'standard',
    responseFormat: 'b64_json',
    referencesVia: 'none',
    references: NO_REFERENCES,
    outputMimeType: 'image/png',
  },
  {
    id: 'dall-e-2',
    family: 'dall-e',
    sizeTable: { '': { '1:1': '1024x1024' } },
    defaultImageSize: '',
    defaultSize: '1024x1024',
    // Listed for `size` only: the table maps 1:1 to the largest.
    presets: ['256x256', '512x512'],
    qualities: ['standard'],
    defaultQuality: 'standard',
    responseFormat: 'b64_json',
    referencesVia: 'none',
    references: NO_REFERENCES,
    outputMimeType: 'image/png',
  },
];

export function findImagesModel(id: string): ImagesModel | undefined {
  return IMAGES_MODELS.find((model) => model.id === id);
}

/** The image sizes a model takes (`1K`, `2K`...), none for GPT Image and DALL·E. */
export function imageSizesOf(model: ImagesModel): string[] {
  return Object.keys(model.sizeTable).filter((tier) => tier !== '');
}

/** Aspect ratios of one tier, in the table's order. */
function ratiosOf(model: ImagesModel, tier: string): string[] {
  return Object.keys(model.sizeTable[tier] ?? {});
}

/** Every `size` the model lists: its table's, its presets, its default. */
function listedSizes(model: ImagesModel): string[] {
  return [...new Set([...Object.values(model.sizeTable).flatMap((row) => Object.values(row)), ...model.presets, model.defaultSize])];
}

/** `1024X1024`, `1024*1024`, `1024×1024` as `1024x1024`; presets as the API spells them (`2K`, `auto`). */
export function normalizeSize(size: string): string {
  const trimmed = size.trim();
  const exact = /^(\d{1,5})\s*[xX×*]\s*(\d{1,5})$/.exec(trimmed);
  if (exact) return `${Number(exact[1])}x${Number(exact[2])}`;
  return /^\d+k$/i.test(trimmed) ? trimmed.toUpperCase() : trimmed.toLowerCase();
}

function sizeWords(model: ImagesModel): string {
  const listed = listedSizes(model).join(', ');
  return model.sizeRule ? `${listed}, or ${model.sizeRule.words}` : listed;
}

/** Why `size` (normalized) is not one the model takes, or undefined. */
function sizeProblem(model: ImagesModel, size: string): string | undefined {
  if (listedSizes(model).includes(size)) return undefined;
  const exact = /^(\d+)x(\d+)$/.exec(size);
  const why = exact && model.sizeRule && Number(exact[1]) > 0 && Number(exact[2]) > 0 ? model.sizeRule.check(Number(exact[1]), Number(exact[2])) : 'not a size it takes';
  return why === undefined ? undefined : `is not a size of ${model.id}${exact && model.sizeRule ? ` (${why})` : ''}: ${sizeWords(model)}`;
}

/**
 * A row's options for an images model. `size` is exact, so it goes alone: the aspect ratio and
 * image size given as defaults (flags) give way to it, a cell of either beside it is refused.
 * Defaults a model takes no part of (an image size for GPT Image) do not apply to it.
 */
export function checkImagesOptions(model: ImagesModel, cells: RowOptionCells): CheckedOptions {
  const checked: CheckedOptions = { problems: [] };
  const problem = (column: CheckedOptions['problems'][number]['column'], reason: string): void => {
    checked.problems.push({ column, reason });
  };
  const tiers = imageSizesOf(model);
  const size = cells.size;
  const aspectRatio = cells.aspectRatio && !(cells.aspectRatio.fromDefault && size) ? cells.aspectRatio : undefined;
  const imageSize = cells.imageSize && !(cells.imageSize.fromDefault && (size || tiers.length === 0)) ? cells.imageSize : undefined;

  if (size) {
    checked.size = normalizeSize(size.value);
    const why = sizeProblem(model, checked.size);
    if (why) problem('size', `${quoted(size)} ${why}`);
    const beside = [aspectRatio && 'aspect_ratio', imageSize && 'image_size'].filter(Boolean).join(' and ');
    if (beside) problem('size', `an exact size goes alone; leave ${beside} empty`);
  }
  if (imageSize) {
    checked.imageSize = imageSize.value;
    if (tiers.length === 0) {
      problem('image_size', `${model.id} takes no image_size; give aspect_ratio (${ratiosOf(model, '').join(', ')}) or size`);
    } else if (!tiers.includes(imageSize.value)) {
      problem('image_size', `${quoted(imageSize)} is not an image size of ${model.id} (${tiers.join(', ')})`);
    }
  }
  if (aspectRatio) {
    checked.aspectRatio = aspectRatio.value;
    const tier = tiers.length === 0 ? '' : imageSize && tiers.includes(imageSize.value) ? imageSize.value : model.defaultImageSize;
    const ratios = ratiosOf(model, tier);
    if (!ratios.includes(aspectRatio.value)) {
      const exact = model.sizeRule ? '; or an exact size' : '';
      problem('aspect_ratio', `${quoted(aspectRatio)} is not an aspect ratio of ${model.id} (${ratios.join(', ')}${exact})`);
    }
  }
  if (cells.quality) {
    checked.quality = cells.quality.value.toLowerCase();
    if (model.qualities.length === 0) problem('quality', `${model.id} takes no quality; leave the cell empty`);
    else if (!model.qualities.includes(checked.quality)) {
      problem('quality', `${quoted(cells.quality)} is not a quality of ${model.id} (${model.qualities.join(', ')})`);
    }
  }
  return checked;
}

/** A checked row's native `size`: exact, else from the table, else the preset named, else the default. */
export function nativeSize(model: ImagesModel, row: { aspectRatio?: string; imageSize?: string; size?: string }): string {
  if (row.size) return row.size;
  const tiers = imageSizesOf(model);
  const tier = tiers.length === 0 ? '' : (row.imageSize ?? model.defaultImageSize);
  if (row.aspectRatio) {
    const native = model.sizeTable[tier]?.[row.aspectRatio];
    if (native) return native;
  }
  // Seedream takes a tier by name and picks the ratio from the prompt.
  if (row.imageSize && model.presets.includes(row.imageSize)) return row.imageSize;
  return model.defaultSize;
}

/** The quality billed: the row's, else the model's default (`standard` for DALL·E). */
export function billedQuality(model: ImagesModel, quality: string | undefined): string | undefined {
  return quality ?? model.defaultQuality;
}

/** The model as the common view of the registry (checks of job definitions, estimates). */
export function capabilitiesOfImagesModel(model: ImagesModel): ModelCapabilities {
  const ratios = [...new Set(Object.values(model.sizeTable).flatMap((row) => Object.keys(row)))];
  return {
    id: model.id,
    provider: 'openai-images',
    aspectRatios: ratios,
    imageSizes: imageSizesOf(model),
    defaultImageSize: model.defaultImageSize || '1K',
    maxReferenceImages: model.references.max,
    thoughtImages: false,
    outputMimeType: model.outputMimeType,
    imageTokens: {},
  };
}
