/**
 * The gallery page of a batch, whichever output holds it: the batch's rows read from its sidecars
 * (through the output store: a folder's files or a bucket's objects), the ledger's totals for the
 * batch, and the page written a card at a time. How each image is shown (a thumbnail made here,
 * or a presigned link) is the caller's: see gallery.ts and gallery-bucket.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { renderCard, renderFoot, renderHead, type GalleryRow, type ImageShow, type Thumbnail } from './gallery-html.js';
import { collator, readSidecars } from './gallery-sidecars.js';
import { readLedger } from '../output/ledger.js';
import type { PriceTable } from '../cost/pricing.js';
import { buildReport, type Report } from '../cost/report.js';
import type { OutputStore } from '../output/storage.js';
import type { LedgerEntry } from '../core/types.js';

/** What the page is made from: the batch's rows and the ledger's figures for it. */
export interface BatchPageData {
  rows: GalleryRow[];
  /** Sidecars that could not be read, with their reason. */
  unreadable: string[];
  ledger: Report;
  ledgerWarnings: string[];
}

export interface GallerySummary {
  file: string;
  rows: number;
  done: number;
  failed: number;
  images: number;
  thumbnails: number;
  /** Images shown by a presigned link (a bucket's page). */
  links: number;
  /** Images without a thumbnail or link (missing file, unreadable format, unsafe name). */
  problems: number;
  unreadableSidecars: number;
  /** The ledger's totals for exactly this batch. */
  ledger: Report;
}

export interface PageLook {
  batch: string;
  /** The batch as people find it: a folder, or an `s3://` URL. */
  folder: string;
  generatedAt?: Date;
  show: ImageShow;
  /** Cards in the making at once (each one's images). */
  concurrency: number;
  imagesOf(row: GalleryRow): Promise<Thumbnail[]>;
}

/** The ledger's lines of exactly this batch. */
async function* batchEntries(out: string, batch: string, warnings: string[]): AsyncGenerator<LedgerEntry> {
  for await (const entry of readLedger(out, { onWarning: (message) => warnings.push(message) })) {
    // The report's `batch` also takes sub-batches (`batch/...`), whose rows are in folders of
    // their own and not on this page: only this batch's lines count here.
    if (entry.batch === batch) yield entry;
  }
}

/** The batch's rows from its sidecars and the ledger's report of exactly this batch, read at once. */
export async function readBatchPage(store: OutputStore, batch: string, prices: PriceTable): Promise<BatchPageData> {
  const unreadable: string[] = [];
  const ledgerWarnings: string[] = [];
  const [rows, ledger] = await Promise.all([
    readSidecars(store, batch, unreadable),
    buildReport(batchEntries(store.root, batch, ledgerWarnings), { by: [], batch, prices }),
  ]);
  return { rows, unreadable, ledger, ledgerWarnings };
}

/**
 * Writes the page to `file` and returns what it shows. The page is written to a temporary file
 * and renamed into place, so a reader never sees half a page.
 */
export async function writeGalleryPage(file: string, data: BatchPageData, look: PageLook): Promise<GallerySummary> {
  const { rows, ledger } = data;
  const counts = countRows(rows);
  await mkdir(dirname(file), { recursive: true });
  const shown = await writeAtomically(file, async (handle) => {
    await handle.write(
      renderHead({
        batch: look.batch,
        generatedAt: look.generatedAt ?? new Date(),
        folder: look.folder,
        ledger,
        ledgerWarnings: data.ledgerWarnings,
        rows: rows.length,
        ...counts,
        rowCostPico: rows.reduce((sum, row) => sum + (row.costPico ?? 0n), 0n),
        rowsWithoutPrice: rows.filter((row) => row.costPico == null).length,
        unreadable: data.unreadable,
        show: look.show,
      }),
    );
    const cardsShown = await writeCards(handle, rows, look);
    await handle.write(renderFoot(cardsShown));
    return cardsShown;
  });
  const { done, failedRows, images } = counts;
  return { file, rows: rows.length, done, failed: failedRows.length, images, ...shown, unreadableSidecars: data.unreadable.length, ledger };
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
 * The cards in row order, from a window of cards in the making: at most `concurrency` cards'
 * images are being made at once and only those cards are held in memory.
 */
async function writeCards(handle: FileHandle, rows: readonly GalleryRow[], look: PageLook): Promise<{ thumbnails: number; links: number; problems: number }> {
  const shown = { thumbnails: 0, links: 0, problems: 0 };
  const card = async (row: GalleryRow): Promise<string> => {
    const thumbs = row.status === 'done' ? await look.imagesOf(row) : [];
    for (const thumb of thumbs) {
      if ('problem' in thumb) shown.problems += 1;
      else if ('linked' in thumb) shown.links += 1;
      else shown.thumbnails += 1;
    }
    return renderCard(row, thumbs);
  };
  const window: Promise<string>[] = [];
  for (const row of rows) {
    window.push(card(row));
    if (window.length >= look.concurrency) await handle.write(await window.shift()!);
  }
  while (window.length > 0) await handle.write(await window.shift()!);
  return shown;
}
