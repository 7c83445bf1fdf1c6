/** How a prompt CSV is read: its rows' defaults, its delimiter, and what a row must have to run. */
import type { PriceTable } from '../cost/pricing.js';
import type { PhotoCache } from './photo-cache.js';

export interface RowDefaults {
  model: string;
  aspectRatio?: string;
  imageSize?: string;
}

/** How a file is read, beyond its rows' defaults: what `run`, `enqueue` and `estimate` take as flags. */
export interface CsvReading {
  /** The field delimiter (`--delimiter`); detected from the header line when not given. */
  delimiter?: string;
  /**
   * A model id named in the file that this version does not know: `'refuse'` makes it a row
   * problem (`--strict`); a function is told of each such id once, at its first row (a warning).
   * Unset: such rows run with the common limits, without a word (catalog firings).
   */
  unknownModel?: 'refuse' | ((model: string, where: { file: string; line: number }) => void);
  /**
   * Where reference images named by URL are fetched to and checked (kept under the output
   * folder). Unset: a URL is taken as written, unchecked, and fetched when its row runs.
   */
  photos?: PhotoCache;
}

export interface ReadRowsOptions extends CsvReading {
  defaults: RowDefaults;
  /**
   * Given when the batch has a budget: a row whose model has no price in this table is refused,
   * since its spend could not be counted against the cap.
   */
  budgetPrices?: PriceTable;
}
