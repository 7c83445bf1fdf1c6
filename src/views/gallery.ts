/**
 * A batch as one self-contained HTML page: a thumbnail of each image, what was asked and what it
 * cost, the failed rows with their reasons, and the ledger's totals for the batch on top.
 *
 * Built from the sidecars in `<out>/<batch>/` (their presence means a row is finished) and the
 * ledger (what was billed). The folder is read as a stream of entries and each sidecar is kept
 * only as the few fields the page shows; thumbnails are made a few at a time and each card is
 * written as soon as it is ready (in row order), so thousands of rows take little memory.
 *
 * The page is written to `<out>/<batch>.gallery.html`: next to the batch folder, never inside it
 * (a row id may be `gallery`, and any name inside the folder could be a row's), and with an
 * extension no output of a row ever has (`.html`), so it cannot clash with any batch's files.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { UsageError } from '../core/errors.js';
import { renderCard, renderFoot, renderHead, type GalleryRow, type Thumbnail } from './gallery-html.js';
import { collator, readSidecars } from './gallery-sidecars.js';
import { thumbnail } from './gallery-thumbnails.js';
import { readLedger } from '../output/ledger.js';
import type { PriceTable } from '../cost/pricing.js';
import { buildReport, type Report } from '../cost/report.js';
import { checkBatchName } from '../output/storage.js';
import type { LedgerEntry } from '../core/types.js';

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

export interface GallerySummary {
  file: string;
  rows: number;
  done: number;
  failed: number;
  images: number;
  thumbnails: number;
  /** Images without a thumbnail (missing file, unreadable format). */
  problems: number;
  unreadableSidecars: number;
  /** The ledger's totals for exactly this batch. */
  ledger: Report;
}

/** `<out>/<batch>.gallery.html` (see the header for why there). */
export function galleryPath(out: string, batch: string): string {
  return `${resolve(out, batch)}.gallery.html`;
}

/** The ledger's lines of exactly this batch. */
async function* batchEntries(out: string, batch: string, warnings: string[]): AsyncGenerator<LedgerEntry> {
  for await (const entry of readLedger(out, { onWarning: (message) => warnings.push(message) })) {
    // The report's `batch` also takes sub-batches (`batch/...`), whose rows are in folders of
    // their own and not on this page: only this batch's lines count here.
    if (entry.batch === batch) yield entry;
  }
}

/**
 * Writes the gallery page of a batch and returns what it shows. The page is written to a
 * temporary file and renamed into place, so a reader never sees half a page.
 */
export async function buildGallery(options: GalleryOptions): Promise<GallerySummary> {
  const width = options.thumbWidth ?? DEFAULT_THUMB_WIDTH;
  const concurrency = options.concurrency ?? DEFAULT_THUMB_CONCURRENCY;
  const { folder, file } = await galleryPlace(options);

  const unreadable: string[] = [];
  const ledgerWarnings: string[] = [];
  const [rows, ledger] = await Promise.all([
    readSidecars(folder, options.batch, unreadable),
    buildReport(batchEntries(options.out, options.batch, ledgerWarnings), {
      by: [],
      batch: options.batch,
      prices: options.prices,
    }),
  ]);
  const counts = countRows(rows);

  const pageDir = dirname(file);
  await mkdir(pageDir, { recursive: true });
  const { thumbnails, problems } = await writeAtomically(file, async (handle) => {
    await handle.write(
      renderHead({
        batch: options.batch,
        generatedAt: options.generatedAt ?? new Date(),
        folder,
        ledger,
        ledgerWarnings,
        rows: rows.length,
        ...counts,
        rowCostPico: rows.reduce((sum, row) => sum + (row.costPico ?? 0n), 0n),
        rowsWithoutPrice: rows.filter((row) => row.costPico == null).length,
        unreadable,
        thumbWidth: width,
      }),
    );
    const shown = await writeCards(handle, rows, { folder, pageDir, width, concurrency });
    await handle.write(renderFoot(shown));
    return shown;
  });
  const { done, failedRows, images } = counts;
  return { file, rows: rows.length, done, failed: failedRows.length, images, thumbnails, problems, unreadableSidecars: unreadable.length, ledger };
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

/** The counts on top of the page: rows done and failed, images, rows per tag. */
function countRows(rows: readonly GalleryRow[]): {
  done: number;
  failed: number;
  failedRows: GalleryRow[];
  images: number;
  tags: { tag: string; rows: number }[];
  untagged: number;
} {
  const tagRows = new Map<string, number>();
  let untagged = 0;
  for (const row of rows) {
    for (const tag of new Set(row.tags)) tagRows.set(tag, (tagRows.get(tag) ?? 0) + 1);
    if (row.tags.length === 0) untagged += 1;
  }
  const failedRows = rows.filter((row) => row.status === 'failed');
  return {
    done: rows.length - failedRows.length,
    failed: failedRows.length,
    failedRows,
    images: rows.reduce((sum, row) => sum + (row.status === 'done' ? row.images.length : 0), 0),
    tags: [...tagRows.entries()].sort(([a], [b]) => collator.compare(a, b)).map(([tag, count]) => ({ tag, rows: count })),
    untagged,
  };
}

/** Writes `file` through a temporary file renamed into place; the temporary file goes on failure. */
async function writeAtomically<T>(file: string, write: (handle: FileHandle) => Promise<T>): Promise<T> {
  const temp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temp, 'w');
  try {
    const result = await write(handle);
    await handle.close();
    await rename(temp, file);
    return result;
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * The cards in row order, from a window of cards in the making: at most `concurrency`
 * thumbnails are being made at once and only those cards are held in memory.
 */
async function writeCards(
  handle: FileHandle,
  rows: readonly GalleryRow[],
  at: { folder: string; pageDir: string; width: number; concurrency: number },
): Promise<{ thumbnails: number; problems: number }> {
  const shown = { thumbnails: 0, problems: 0 };
  const card = async (row: GalleryRow): Promise<string> => {
    const thumbs: Thumbnail[] = [];
    if (row.status === 'done') for (const image of row.images) thumbs.push(await thumbnail(at.folder, at.pageDir, image.file, at.width));
    for (const thumb of thumbs) {
      if ('problem' in thumb) shown.problems += 1;
      else shown.thumbnails += 1;
    }
    return renderCard(row, thumbs);
  };
  const window: Promise<string>[] = [];
  for (const row of rows) {
    window.push(card(row));
    if (window.length >= at.concurrency) await handle.write(await window.shift()!);
  }
  while (window.length > 0) await handle.write(await window.shift()!);
  return shown;
}
