/**
 * What a model accepts and answers, in the same shape for every provider: the row checks,
 * estimates and the mock read it. Its own file, so that each provider's models table and the
 * registry (models.ts) that joins them need not import each other.
 */
import type { ProviderName } from './provider.js';

/** What any model accepts, in the terms common to both providers. */
export interface ModelCapabilities {
  id: string;
  provider: ProviderName;
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
   * `estimate` and the mock; real bills come from the usage. Empty for models billed otherwise.
   */
  imageTokens: Readonly<Record<string, number>>;
}
