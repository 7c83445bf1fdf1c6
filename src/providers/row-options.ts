/**
 * A row's image options as every provider's models module checks them: the CSV keeps one format
 * for every model (`aspect_ratio`, `image_size`, `size`, `quality`), and each provider says which
 * values its models take, in words that name the column and what the model can.
 */

export type OptionColumn = 'aspect_ratio' | 'image_size' | 'size' | 'quality';

/** One option as the row has it: written in its cell, or taken from a flag (`--aspect-ratio`). */
export interface OptionValue {
  value: string;
  fromDefault: boolean;
  /** The cell as written, where `value` is its normalized form (`2k` for `2K`): messages quote it. */
  written?: string;
}

export interface RowOptionCells {
  aspectRatio?: OptionValue;
  /** Already in the API's form (`2K`, see normalizeImageSize). */
  imageSize?: OptionValue;
  size?: OptionValue;
  quality?: OptionValue;
}

/** The options a row keeps (defaults that do not apply to its model dropped), or its problems. */
export interface CheckedOptions {
  aspectRatio?: string;
  imageSize?: string;
  size?: string;
  quality?: string;
  problems: { column: OptionColumn; reason: string }[];
}

/** `"16:9"`, or `"16:9" (the default)` for a value that came from a flag. */
export function quoted(option: OptionValue): string {
  return `"${option.written ?? option.value}"${option.fromDefault ? ' (the default)' : ''}`;
}

/** What reference images a model takes: how many, of which types, how large. */
export interface ReferenceRules {
  max: number;
  mimeTypes: readonly string[];
  /** The types in words, for messages (`PNG, JPEG or WebP`). */
  typeNames: string;
  /** Largest file, when the model limits each one. */
  maxBytesEach?: number;
  /** Largest total of a row's files (a request's inline data). */
  maxBytesTotal?: number;
}
