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
import { access, mkdir, open, opendir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import sharp from 'sharp';
import { z } from 'zod';
import { UsageError } from '../core/errors.js';
import { renderCard, renderFoot, renderHead, type GalleryRow, type Thumbnail } from './gallery-html.js';
import { tokenCountsOf, type BillingRecord } from '../cost/billing.js';
import { geminiBilling } from '../providers/gemini/usage.js';
import { readLedger } from '../output/ledger.js';
import type { PriceTable } from '../cost/pricing.js';
import { buildReport, type Report } from '../cost/report.js';
import { checkBatchName } from '../output/storage.js';
import type { LedgerEntry, UsageMetadata } from '../core/types.js';

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

/**
 * The sidecar fields the page shows (the `Sidecar` type of run/generate.ts). Checked rather than
 * trusted: a JSON file in the folder that is not a sidecar, or one of another version, is
 * reported instead of breaking the page.
 */
const sidecarSchema = z.object({
  batch: z.string(),
  id: z.string().min(1),
  status: z.enum(['done', 'failed']),
  reason: z.string().optional(),
  prompt: z.string(),
  parameters: z.object({ model: z.string(), aspectRatio: z.string().optional(), imageSize: z.string().optional() }),
  tags: z.array(z.string()).default([]),
  images: z.array(z.object({ file: z.string(), mimeType: z.string(), bytes: z.number() })).default([]),
  texts: z.array(z.string()).default([]),
  usageMetadata: z.record(z.string(), z.unknown()).optional(),
  billing: z.looseObject({}).optional(),
  costUsd: z.number().nullable().optional(),
  attempt: z.number().default(1),
  timings: z.object({ finishedAt: z.string() }).partial().optional(),
});

/** Row ids sort as people expect (`row-9` before `row-10`), the same on every machine. */
const collator = new Intl.Collator('en', { numeric: true });

/** Formats the thumbnailer is let to read: the ones rows are saved in (see output/storage.ts). */
const READABLE = new Set(['jpeg', 'png', 'webp', 'gif', 'heif']);

/** The sidecars of a batch folder, one directory entry at a time. */
async function readSidecars(folder: string, batch: string, unreadable: string[]): Promise<GalleryRow[]> {
  const rows: GalleryRow[] = [];
  const dir = await opendir(folder, { bufferSize: 256 });
  for await (const entry of dir) {
    // `.partial/` holds images being received; sub-batches are folders of their own.
    if (!entry.isFile() || !entry.name.endsWith('.json')) continue;
    const row = await readSidecar(join(folder, entry.name), entry.name, batch, unreadable);
    if (row) rows.push(row);
  }
  return rows.sort((a, b) => collator.compare(a.id, b.id));
}

async function readSidecar(path: string, name: string, batch: string, unreadable: string[]): Promise<GalleryRow | undefined> {
  let parsed: z.infer<typeof sidecarSchema>;
  try {
    const result = sidecarSchema.safeParse(JSON.parse(await readFile(path, 'utf8')));
    if (!result.success) {
      unreadable.push(`${name}: not a sidecar (${result.error.issues[0]?.path.join('.') || 'value'}: ${result.error.issues[0]?.message})`);
      return undefined;
    }
    parsed = result.data;
  } catch (error) {
    unreadable.push(`${name}: ${(error as Error).message}`);
    return undefined;
  }
  // A sidecar names its batch and row; one that names others was copied here by hand.
  if (parsed.batch !== batch || `${parsed.id}.json` !== name) {
    unreadable.push(`${name}: belongs to batch "${parsed.batch}", row "${parsed.id}"; left out`);
    return undefined;
  }
  const billing = (parsed.billing as BillingRecord | undefined) ?? (parsed.usageMetadata ? geminiBilling(parsed.usageMetadata as UsageMetadata) : undefined);
  return {
    id: parsed.id,
    status: parsed.status,
    ...(parsed.reason !== undefined ? { reason: parsed.reason } : {}),
    prompt: parsed.prompt,
    model: parsed.parameters.model,
    ...(parsed.parameters.aspectRatio ? { aspectRatio: parsed.parameters.aspectRatio } : {}),
    ...(parsed.parameters.imageSize ? { imageSize: parsed.parameters.imageSize } : {}),
    tags: parsed.tags,
    images: parsed.images,
    texts: parsed.texts,
    ...(billing ? { tokens: tokenCountsOf(billing) } : {}),
    // costUsd is picoToUsd of an exact amount: back to picodollars exactly (12 decimals fit a double
    // for any cost of one answer). Absent when nothing was billed; null when the model had no price.
    costPico: billing === undefined ? undefined : typeof parsed.costUsd === 'number' ? BigInt(Math.round(parsed.costUsd * 1e12)) : null,
    attempt: parsed.attempt,
    ...(parsed.timings?.finishedAt ? { finishedAt: parsed.timings.finishedAt } : {}),
  };
}

/** The ledger's lines of exactly this batch. */
async function* batchEntries(out: string, batch: string, warnings: string[]): AsyncGenerator<LedgerEntry> {
  for await (const entry of readLedger(out, { onWarning: (message) => warnings.push(message) })) {
    // The report's `batch` also takes sub-batches (`batch/...`), whose rows are in folders of
    // their own and not on this page: only this batch's lines count here.
    if (entry.batch === batch) yield entry;
  }
}

/** A link from the page to a full image, relative so the output folder can be moved or served. */
function hrefFrom(pageDir: string, imagePath: string): string {
  return relative(pageDir, imagePath).split(sep).map(encodeURIComponent).join('/');
}

async function thumbnail(folder: string, pageDir: string, file: string, width: number): Promise<Thumbnail> {
  // The sidecar names the file; a name that could leave the folder is not followed.
  if (file.includes('/') || file.includes('\\') || file.startsWith('.')) return { file, href: '', problem: `unsafe file name ${file}` };
  const path = join(folder, file);
  const href = hrefFrom(pageDir, path);
  try {
    // Asked first: for a file that is not there, libvips does not always say "missing".
    await access(path);
    const image = sharp(path, { failOn: 'none' });
    const meta = await image.metadata();
    if (!meta.format || !READABLE.has(meta.format)) return { file, href, problem: `no preview: ${meta.format ?? 'unknown'} image` };
    // Only the thumbnail goes into the page, never the image itself.
    const { data, info } = await image.rotate().resize({ width, withoutEnlargement: true }).webp({ quality: 72, effort: 2 }).toBuffer({ resolveWithObject: true });
    const upright = (meta.orientation ?? 1) >= 5;
    return {
      file,
      href,
      dataUri: `data:image/webp;base64,${data.toString('base64')}`,
      width: info.width,
      height: info.height,
      ...(meta.width && meta.height ? { sourceWidth: upright ? meta.height : meta.width, sourceHeight: upright ? meta.width : meta.height } : {}),
    };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { file, href, problem: code === 'ENOENT' || /missing|does not exist/i.test((error as Error).message) ? `image file missing: ${file}` : `no preview: ${(error as Error).message}` };
  }
}

/**
 * Writes the gallery page of a batch and returns what it shows. The page is written to a
 * temporary file and renamed into place, so a reader never sees half a page.
 */
export async function buildGallery(options: GalleryOptions): Promise<GallerySummary> {
  const problem = checkBatchName(options.batch);
  if (problem) throw new UsageError(problem);
  const width = options.thumbWidth ?? DEFAULT_THUMB_WIDTH;
  const concurrency = options.concurrency ?? DEFAULT_THUMB_CONCURRENCY;
  const folder = resolve(options.out, options.batch);
  const file = resolve(options.output ?? galleryPath(options.out, options.batch));
  const folderStat = await stat(folder).catch(() => undefined);
  if (!folderStat?.isDirectory()) throw new UsageError(`no folder ${folder}: batch "${options.batch}" has no outputs there (check --out or TOKENHOT_OUT_DIR)`);
  if ((await stat(file).catch(() => undefined))?.isDirectory()) throw new UsageError(`${file} is a folder (a batch of that name?): give the page another name with --output`);

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

  const tagRows = new Map<string, number>();
  let untagged = 0;
  for (const row of rows) {
    for (const tag of new Set(row.tags)) tagRows.set(tag, (tagRows.get(tag) ?? 0) + 1);
    if (row.tags.length === 0) untagged += 1;
  }
  const failedRows = rows.filter((row) => row.status === 'failed');
  const done = rows.length - failedRows.length;
  const images = rows.reduce((sum, row) => sum + (row.status === 'done' ? row.images.length : 0), 0);

  const pageDir = dirname(file);
  await mkdir(pageDir, { recursive: true });
  const temp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temp, 'w');
  let thumbnails = 0;
  let problems = 0;
  try {
    await handle.write(
      renderHead({
        batch: options.batch,
        generatedAt: options.generatedAt ?? new Date(),
        folder,
        ledger,
        ledgerWarnings,
        rows: rows.length,
        done,
        failed: failedRows.length,
        images,
        rowCostPico: rows.reduce((sum, row) => sum + (row.costPico ?? 0n), 0n),
        rowsWithoutPrice: rows.filter((row) => row.costPico == null).length,
        unreadable,
        tags: [...tagRows.entries()].sort(([a], [b]) => collator.compare(a, b)).map(([tag, count]) => ({ tag, rows: count })),
        untagged,
        failedRows,
        thumbWidth: width,
      }),
    );
    // A window of cards in the making, written in row order: at most `concurrency` thumbnails
    // are being made at once and only those cards are held in memory.
    const card = async (row: GalleryRow): Promise<string> => {
      const thumbs: Thumbnail[] = [];
      if (row.status === 'done') for (const image of row.images) thumbs.push(await thumbnail(folder, pageDir, image.file, width));
      for (const thumb of thumbs) {
        if ('problem' in thumb) problems += 1;
        else thumbnails += 1;
      }
      return renderCard(row, thumbs);
    };
    const window: Promise<string>[] = [];
    for (const row of rows) {
      window.push(card(row));
      if (window.length >= concurrency) await handle.write(await window.shift()!);
    }
    while (window.length > 0) await handle.write(await window.shift()!);
    await handle.write(renderFoot({ thumbnails, problems }));
    await handle.close();
    await rename(temp, file);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw error;
  }
  return { file, rows: rows.length, done, failed: failedRows.length, images, thumbnails, problems, unreadableSidecars: unreadable.length, ledger };
}
