/**
 * Finding a feed's columns by the names a format documents: regardless of case, and with a space
 * or hyphen for the underscore (Google's sheet template writes `image link` for `image_link`).
 */
import type { FeedRecord, FeedTable } from './types.js';

function key(name: string): string {
  return name.trim().toLowerCase().replace(/[\s-]+/g, '_');
}

/** The header's name for a documented column, or undefined when the feed has none. */
export function columnNamed(table: FeedTable, documented: string): string | undefined {
  const wanted = key(documented);
  return table.columns.find((column) => key(column) === wanted);
}

/** A reader of one column's trimmed cell ('' where the feed has no such column). */
export function cellReader(table: FeedTable, documented: string): (record: FeedRecord) => string {
  const column = columnNamed(table, documented);
  return column === undefined ? () => '' : (record) => (record.cells[column] ?? '').trim();
}

/** A comma-separated cell (Shopify's `Tags`, Merchant's `additional_image_link`) as its trimmed, non-empty parts. */
export function splitCommas(cell: string): string[] {
  return cell
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}
