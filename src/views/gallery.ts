/**
 * A batch as one self-contained HTML page: a thumbnail of each image, what was asked and what it
 * cost, the failed rows with their reasons, and the ledger's totals for the batch on top.
 *
 * Built from the sidecars in `<out>/<batch>/` (their presence means a row is finished) and the
 * ledger (what was billed). The folder is read as a stream of entries and each sidecar is kept
 * only as the few fields the page shows; thumbnails are made a few at a time and each card is
 * written as soon as it is ready (in row order), so thousands of rows take little memory.
 *
 * For a local output folder; a bucket's page is gallery-bucket.ts. The page is written to
 * `<out>/<batch>.gallery.html`: next to the batch folder, never inside it
 * (a row id may be `gallery`, and any name inside the folder could be a row's), and with an
 * extension no output of a row ever has (`.html`), so it cannot clash with any batch's files.
 */
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { UsageError } from '../core/errors.js';
import type { GalleryRow, Thumbnail } from './gallery-html.js';
import { readBatchPage, writeGalleryPage, type GallerySummary } from './gallery-page.js';
import { thumbnail } from './gallery-thumbnails.js';
import type { PriceTable } from '../cost/pricing.js';
import { checkBatchName, OutputStore } from '../output/storage.js';

export type { GallerySummary } from './gallery-page.js';

export const DEFAULT_THUMB_WIDTH = 256;
/** Thumbnails in the making at once: sharp works each on one thread, and reading files overlaps. */
export const DEFAULT_THUMB_CONCURRENCY = 8;

export interface GalleryOptions {
  /** The output folder (`--out`). */
  out: string;
  batch: string;
  /** Where to write the page; default `galleryPath(out, batch)`. */
  output?: string;
  prices: PriceTable;
  thumbWidth?: number;
  /** Thumbnails made at once. */
  concurrency?: number;
  generatedAt?: Date;
}

/** `<out>/<batch>.gallery.html` (see the header for why there). */
export function galleryPath(out: string, batch: string): string {
  return `${resolve(out, batch)}.gallery.html`;
}

/** Writes the gallery page of a batch in a local output folder and returns what it shows. */
export async function buildGallery(options: GalleryOptions): Promise<GallerySummary> {
  const width = options.thumbWidth ?? DEFAULT_THUMB_WIDTH;
  const { folder, file } = await galleryPlace(options);
  const data = await readBatchPage(new OutputStore(options.out), options.batch, options.prices);
  const pageDir = dirname(file);
  return writeGalleryPage(file, data, {
    batch: options.batch,
    folder,
    ...(options.generatedAt ? { generatedAt: options.generatedAt } : {}),
    show: { kind: 'thumbnails', width },
    concurrency: options.concurrency ?? DEFAULT_THUMB_CONCURRENCY,
    imagesOf: (row) => thumbnailsOf(row, folder, pageDir, width),
  });
}

/** A row's thumbnails, one after another (the window of cards is what runs at once). */
async function thumbnailsOf(row: GalleryRow, folder: string, pageDir: string, width: number): Promise<Thumbnail[]> {
  const thumbs: Thumbnail[] = [];
  for (const image of row.images) thumbs.push(await thumbnail(folder, pageDir, image.file, width));
  return thumbs;
}

/** The batch folder, which must exist, and the page's file, which must not be a folder. */
async function galleryPlace(options: GalleryOptions): Promise<{ folder: string; file: string }> {
  const problem = checkBatchName(options.batch);
  if (problem) throw new UsageError(problem);
  const folder = resolve(options.out, options.batch);
  const file = resolve(options.output ?? galleryPath(options.out, options.batch));
  const folderStat = await stat(folder).catch(() => undefined);
  if (!folderStat?.isDirectory()) throw new UsageError(`no folder ${folder}: batch "${options.batch}" has no outputs there (check --out or TOKENHOT_OUT_DIR)`);
  if ((await stat(file).catch(() => undefined))?.isDirectory()) throw new UsageError(`${file} is a folder (a batch of that name?): give the page another name with --output`);
  return { folder, file };
}
