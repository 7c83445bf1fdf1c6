/**
 * The registry of image models over both providers: which provider serves a model id, what each
 * model accepts (the CSV checks, job definitions, the mock and the estimate read it), and the
 * known ids for "did you mean". Each provider's own table is in its folder (`gemini/models.ts`,
 * `openai-images/models.ts`); ids this version does not know go to Gemini, as they always have.
 */
import { checkGeminiOptions, findGeminiModel, GEMINI_MODELS, geminiCapabilitiesOf, geminiReferenceRules } from './gemini/models.js';
import { capabilitiesOfImagesModel, checkImagesOptions, findImagesModel, IMAGES_MODELS } from './openai-images/models.js';
import type { ModelCapabilities } from './capabilities.js';
import type { ProviderName } from './provider.js';
import type { CheckedOptions, ReferenceRules, RowOptionCells } from './row-options.js';

export { BASE_ASPECT_RATIOS, DEFAULT_MODEL, findGeminiModel } from './gemini/models.js';

export type { ModelCapabilities } from './capabilities.js';

/** Every model this version knows, Gemini's first. */
export const MODELS: readonly ModelCapabilities[] = [...GEMINI_MODELS, ...IMAGES_MODELS.map(capabilitiesOfImagesModel)];

/** Every aspect ratio and image size some model takes: what a flag's value may be at all. */
export const ALL_ASPECT_RATIOS: readonly string[] = [...new Set(MODELS.flatMap((m) => m.aspectRatios))];
export const ALL_IMAGE_SIZES: readonly string[] = [...new Set(MODELS.flatMap((m) => m.imageSizes))].sort((a, b) => parseSize(a) - parseSize(b));

function parseSize(size: string): number {
  return size.endsWith('K') ? Number(size.slice(0, -1)) * 1024 : Number(size);
}

/** The provider that serves a model id: the images endpoint's seven, else Gemini (unknown ids too). */
export function providerOf(id: string): ProviderName {
  return findImagesModel(id) ? 'openai-images' : 'gemini';
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
  const images = findImagesModel(id);
  return images ? capabilitiesOfImagesModel(images) : findGeminiModel(id);
}

/** Capabilities for checks: a model this version does not know is held to Gemini's common subset. */
export function capabilitiesOf(id: string): ModelCapabilities {
  return findModel(id) ?? geminiCapabilitiesOf(id);
}

/** What the row checks ask of a model, looked up once per model id. */
export interface ModelRules {
  /** A model this version knows (unknown ones are held to Gemini's common subset). */
  known: boolean;
  provider: ProviderName;
  /** A row's options, by the rules of the model's provider. */
  check(cells: RowOptionCells): CheckedOptions;
  references: ReferenceRules;
}

export function rulesOf(id: string): ModelRules {
  const images = findImagesModel(id);
  if (images) return { known: true, provider: 'openai-images', check: (cells) => checkImagesOptions(images, cells), references: images.references };
  const known = findGeminiModel(id);
  const caps = known ?? geminiCapabilitiesOf(id);
  return { known: known !== undefined, provider: 'gemini', check: (cells) => checkGeminiOptions(caps, cells), references: geminiReferenceRules(caps) };
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
