/**
 * What each Gemini image model accepts: aspect ratios, image sizes, reference images. Model ids
 * get renamed (`-preview` ids lose the suffix), so a lookup also matches an id with or without
 * `-preview`.
 */
import { GEMINI_INPUT_MIME_TYPES, GEMINI_INPUT_TYPE_NAMES } from '../../rows/image-type.js';
import type { ModelCapabilities } from '../capabilities.js';
import { quoted, type CheckedOptions, type ReferenceRules, type RowOptionCells } from '../row-options.js';

export const DEFAULT_MODEL = 'gemini-3-pro-image-preview';

export const BASE_ASPECT_RATIOS = ['1:1', '2:3', '3:2', '3:4', '4:3', '4:5', '5:4', '9:16', '16:9', '21:9'] as const;

export const GEMINI_MODELS: readonly ModelCapabilities[] = [
  {
    id: 'gemini-3-pro-image-preview',
    provider: 'gemini',
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
    provider: 'gemini',
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
    provider: 'gemini',
    aspectRatios: BASE_ASPECT_RATIOS,
    imageSizes: [],
    defaultImageSize: '1K',
    maxReferenceImages: 3,
    thoughtImages: false,
    outputMimeType: 'image/png',
    imageTokens: { '1K': 1290 },
  },
];

export function findGeminiModel(id: string): ModelCapabilities | undefined {
  const bare = id.replace(/-preview$/, '');
  return GEMINI_MODELS.find((m) => m.id === id || m.id.replace(/-preview$/, '') === bare);
}

/** Capabilities for checks: a model this version does not know is held to the common subset. */
export function geminiCapabilitiesOf(id: string): ModelCapabilities {
  return (
    findGeminiModel(id) ?? {
      id,
      provider: 'gemini',
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

/**
 * A request's inline data is limited to about 20 MB, so the references of one row must fit in it.
 * This counts file bytes; base64 in the request adds a third, so rows near the limit may still
 * be refused by the endpoint, but anything over it certainly would be.
 */
export const MAX_GEMINI_REFERENCE_BYTES = 20 * 1024 * 1024;

export function geminiReferenceRules(caps: ModelCapabilities): ReferenceRules {
  return {
    max: caps.maxReferenceImages,
    mimeTypes: GEMINI_INPUT_MIME_TYPES,
    typeNames: GEMINI_INPUT_TYPE_NAMES,
    maxBytesTotal: MAX_GEMINI_REFERENCE_BYTES,
  };
}

/**
 * A row's options for a Gemini model. A default image size does not apply to a model that takes
 * none (2.5 flash has one fixed size), else a mixed CSV could not be run with --image-size at all.
 * Gemini takes no `size` or `quality`: its sizes are the aspect ratio and image size.
 */
export function checkGeminiOptions(caps: ModelCapabilities, cells: RowOptionCells): CheckedOptions {
  const id = caps.id;
  const checked: CheckedOptions = { problems: [] };
  const { aspectRatio, size, quality } = cells;
  const imageSize = cells.imageSize?.fromDefault && caps.imageSizes.length === 0 ? undefined : cells.imageSize;
  if (aspectRatio) {
    checked.aspectRatio = aspectRatio.value;
    if (!caps.aspectRatios.includes(aspectRatio.value)) {
      checked.problems.push({ column: 'aspect_ratio', reason: `${quoted(aspectRatio)} is not an aspect ratio of ${id} (${caps.aspectRatios.join(', ')})` });
    }
  }
  if (imageSize) {
    checked.imageSize = imageSize.value;
    if (caps.imageSizes.length === 0) checked.problems.push({ column: 'image_size', reason: `${id} takes no image_size; leave the cell empty` });
    else if (!caps.imageSizes.includes(imageSize.value)) {
      checked.problems.push({ column: 'image_size', reason: `${quoted(imageSize)} is not an image size of ${id} (${caps.imageSizes.join(', ')})` });
    }
  }
  if (size) checked.problems.push({ column: 'size', reason: `${id} takes no exact size; give aspect_ratio and image_size instead` });
  if (quality) checked.problems.push({ column: 'quality', reason: `${id} takes no quality; leave the cell empty` });
  return checked;
}
