/**
 * Google Merchant Center feeds (TSV or CSV) → products, one record each. Columns as Google's
 * product data specification names them (`id`, `title`, `description`, `link`, `image_link`,
 * `additional_image_link`, `product_type`, `brand`, `color`, `custom_label_0` ...), also written
 * with spaces as in Google's sheet template (`image link`). Variants are items of their own in
 * these feeds (sharing an `item_group_id`), so each is a product here.
 */
import { cellReader, splitCommas } from './columns.js';
import type { FeedProducts, FeedProduct, FeedTable } from './types.js';

const CUSTOM_LABELS = [0, 1, 2, 3, 4].map((n) => `custom_label_${n}`);

/** Photos: `image_link`, then `additional_image_link` (comma-separated). Tags: the custom labels given. */
export function merchantProducts(table: FeedTable): FeedProducts {
  const imageLink = cellReader(table, 'image_link');
  const additional = cellReader(table, 'additional_image_link');
  const labels = CUSTOM_LABELS.map((label) => cellReader(table, label));
  const products = table.records.map((record): FeedProduct => {
    const photos = [imageLink(record), ...splitCommas(additional(record))].filter((url) => url !== '');
    const tags = labels.map((label) => label(record)).filter((tag) => tag !== '');
    return { line: record.line, fields: { ...record.cells }, photos: [...new Set(photos)], tags: [...new Set(tags)] };
  });
  return { products, derivedFields: [], problems: [] };
}
