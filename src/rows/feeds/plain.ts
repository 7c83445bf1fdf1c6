/**
 * Any other table (a PIM export, a spreadsheet) → products, one record each, named by the `id`
 * template the job gives. Photos and tags as in a prompt CSV: `reference_images` and `tags`
 * columns, ";"-separated; photo paths relative to the feed's folder, URLs as they are.
 */
import { dirname, resolve } from 'node:path';
import { cellReader } from './columns.js';
import type { FeedProducts, FeedProduct, FeedTable } from './types.js';
import { isPhotoUrl } from '../photo-url.js';

export function plainProducts(table: FeedTable): FeedProducts {
  const references = cellReader(table, 'reference_images');
  const tagsCell = cellReader(table, 'tags');
  const folder = dirname(resolve(table.file));
  const products = table.records.map((record): FeedProduct => {
    const photos = splitSemicolons(references(record)).map((photo) => (isPhotoUrl(photo) ? photo : resolve(folder, photo)));
    return { line: record.line, fields: { ...record.cells }, photos: [...new Set(photos)], tags: [...new Set(splitSemicolons(tagsCell(record)))] };
  });
  return { products, derivedFields: [], problems: [] };
}


function splitSemicolons(cell: string): string[] {
  return cell
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}
