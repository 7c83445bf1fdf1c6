/**
 * The words of product feeds, as the feed readers, templates and shot lists use them.
 *
 * - feed: a product export (Shopify's product CSV, a Google Merchant Center feed, a PIM export),
 *   CSV or TSV, any delimiter, BOM or not.
 * - feed record: one record of the feed file, with the line it starts on (1 = header).
 * - product: what a feed says about one product: its fields, photos and tags. In a Shopify
 *   export several records are one product (one `Handle`); elsewhere one record is one product.
 * - shot: one image every product gets (a hero on white, a lifestyle scene), with its own prompt
 *   template and model options. A product's shot is one Row, id `<product id>--<shot name>`.
 */
import type { RowProblem } from '../csv.js';

export type FeedFormat = 'shopify' | 'merchant' | 'plain';

export const FEED_FORMATS: readonly FeedFormat[] = ['shopify', 'merchant', 'plain'];

/** One record of a feed file, its cells by the header's names as written (trimmed). */
export interface FeedRecord {
  /** Line where the record starts (1 = header). */
  line: number;
  cells: Record<string, string>;
}

/** A feed file read whole: its header and records. */
export interface FeedTable {
  /** The path as given, for messages. */
  file: string;
  delimiter: string;
  /** Header names as written (trimmed), in order; unnamed columns left out. */
  columns: string[];
  headerLine: number;
  records: FeedRecord[];
}

/** One product of a feed, before its id template is applied. */
export interface FeedProduct {
  /** Line of its first record. */
  line: number;
  /** The first record's cells, plus values gathered from later records (Shopify's option values). */
  fields: Record<string, string>;
  /** Photo URLs (or paths, in plain feeds), in order, without repeats. */
  photos: string[];
  tags: string[];
  /** Shopify's `Status`, lower-cased (`active`, `draft`, `archived`); undefined where a feed has none. */
  status?: string;
}

/** A product with its id: the unit shot lists work on. */
export interface Product {
  /** File-safe id (from the `id` template), unique in the feed regardless of case. */
  id: string;
  /** Line of its first record in the feed. */
  line: number;
  fields: Record<string, string>;
  photos: string[];
  tags: string[];
}

/** A format's products, and the names templates may use besides the header's columns. */
export interface FeedProducts {
  products: FeedProduct[];
  /** Names made from the data that templates may use (Shopify's option names, like `Color`). */
  derivedFields: string[];
  /** Records left out with the reason (`file:line` problems, not thrown). */
  problems: FeedProblem[];
}

/** A record or product left out, named by its line: a row problem, printed by `formatProblem` (rows/csv.ts). */
export type FeedProblem = RowProblem;
