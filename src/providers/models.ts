/**
 * What each image model accepts, in one place: the CSV checks, the request builder, the mock
 * and the estimate all read it. Model ids get renamed (`-preview` ids lose the suffix), so a
 * lookup also matches an id with or without `-preview`.
 */

export const DEFAULT_MODEL = 'gemini-3-pro-image-preview';

export const BASE_ASPECT_RATIOS = ['1:1', '2:3', '3:2', '3:4', '4:3', '4:5', '5:4', '9:16', '16:9', '21:9'] as const;

export interface ModelCapabilities {
  id: string;
  aspectRatios: readonly string[];
  /** Allowed `imageSize` values; empty when the model takes no `imageSize`. */
  imageSizes: readonly string[];
  /** Size the model uses when none is asked for (for estimates). */
  defaultImageSize: string;
  maxReferenceImages: number;
  /** Gemini 3 models send up to two interim "thought" images before the final one. */
  thoughtImages: boolean;
  /** What the model answers with; read `mimeType` in answers, this is only for the mock. */
  outputMimeType: 'image/jpeg' | 'image/png';
  /**
   * Output tokens of one image per size, from the provider's public pricing pages. Used by
   * `estimate` and the mock; real bills come from `usageMetadata`.
   */
  imageTokens: Readonly<Record<string, number>>;
}

export const MODELS: readonly ModelCapabilities[] = [
  {
    id: 'gemini-3-pro-image-preview',
    aspectRatios: BASE_ASPECT_RATIOS,
    imageSizes: ['1K', '2K', '4K'],
    defaultImageSize: '1K',
    maxReferenceImages: 14,
    thoughtImages: true,
    outputMimeType: 'image/jpeg',
    imageTokens: { '1K': 1120, '2K': 1120, '4K': 2000 },
  },
  {
    id: 'gemini-3.1-flash-image-preview',
    aspectRatios: [...BASE_ASPECT_RATIOS, '1:4', '4:1', '1:8', '8:1'],
    imageSizes: ['512', '1K', '2K', '4K'],
    defaultImageSize: '1K',
    maxReferenceImages: 14,
    thoughtImages: true,
    outputMimeType: 'image/png',
    imageTokens: { '512': 747, '1K': 1120, '2K': 1680, '4K': 2520 },
  },
  {
    id: 'gemini-2.5-flash-image',
    aspectRatios: BASE_ASPECT_RATIOS,
    imageSizes: [],
    defaultImageSize: '1K',
    maxReferenceImages: 3,
    thoughtImages: false,
    outputMimeType: 'image/png',
    imageTokens: { '1K': 1290 },
  },
];

/** Every aspect ratio and image size some model takes: what a flag's value may be at all. */
export const ALL_ASPECT_RATIOS: readonly string[] = [...new Set(MODELS.flatMap((m) => m.aspectRatios))];
export const ALL_IMAGE_SIZES: readonly string[] = [...new Set(MODELS.flatMap((m) => m.imageSizes))].sort((a, b) => parseSize(a) - parseSize(b));

function parseSize(size: string): number {
  return size.endsWith('K') ? Number(size.slice(0, -1)) * 1024 : Number(size);
}

/**
 * An image size as people write it, in the form the API requires: Tokenhot's own docs example
 * sends `"2k"`, Google refuses anything but an uppercase `2K`. Other values come back trimmed,
 * for the checks to refuse by name.
 */
export function normalizeImageSize(size: string): string {
  const trimmed = size.trim();
  return /^\d+k$/.test(trimmed) ? trimmed.toUpperCase() : trimmed;
}

/** The capabilities of a model id, or undefined for a model this version does not know. */
export function findModel(id: string): ModelCapabilities | undefined {
  const bare = id.replace(/-preview$/, '');
  return MODELS.find((m) => m.id === id || m.id.replace(/-preview$/, '') === bare);
}

/** Capabilities for checks: a model this version does not know is held to the common subset. */
export function capabilitiesOf(id: string): ModelCapabilities {
  return (
    findModel(id) ?? {
      id,
      aspectRatios: BASE_ASPECT_RATIOS,
      imageSizes: ['1K', '2K', '4K'],
      defaultImageSize: '1K',
      maxReferenceImages: 14,
      thoughtImages: true,
      outputMimeType: 'image/png',
      imageTokens: {},
    }
  );
}

/** Image size used for a row: the asked one, else the model's default. */
export function effectiveImageSize(model: string, imageSize: string | undefined): string {
  return imageSize ?? capabilitiesOf(model).defaultImageSize;
}

/**
 * Why an id is not a model this version knows, with the nearest known id when it looks like a
 * typo of one: `"gemini-3-pro-imge" is not a model this version knows (did you mean
 * gemini-3-pro-image-preview?)`.
 */
export function unknownModelReason(id: string): string {
  const nearest = nearestModel(id);
  return `"${id}" is not a model this version knows (${nearest ? `did you mean ${nearest}?` : `known: ${MODELS.map((m) => m.id).join(', ')}`})`;
}

/**
 * The known id nearest to `id` (matched with and without `-preview`), when within a third of its
 * length in edits: near enough to be a typo, not another model.
 */
export function nearestModel(id: string): string | undefined {
  let best: { model: string; distance: number; length: number } | undefined;
  for (const model of MODELS) {
    for (const name of [model.id, model.id.replace(/-preview$/, '')]) {
      const distance = editDistance(id.toLowerCase(), name);
      if (!best || distance < best.distance) best = { model: model.id, distance, length: name.length };
    }
  }
  return best && best.distance <= best.length / 3 ? best.model : undefined;
}

/** Levenshtein distance: insertions, deletions and substitutions, one row of the table at a time. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
