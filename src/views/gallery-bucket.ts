/**
 * The gallery page of a batch in a bucket (`--out s3://bucket/prefix`): the same page as a
 * folder's, made from the sidecar objects, but each image is the full object by a presigned GET
 * URL that expires (at most 7 days, AWS's limit for SigV4). No thumbnails are made: that would
 * download every image; the page loads each image lazily, as it scrolls into view.
 *
 * The page is a local file (default `./gallery-<batch>.html`), not an object: a page in the
 * bucket would need a public or presigned link of its own, and its image links expire anyway.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UsageError } from '../core/errors.js';
import type { GalleryRow, Thumbnail } from './gallery-html.js';
import { readBatchPage, writeGalleryPage, type GallerySummary } from './gallery-page.js';
import type { PriceTable } from '../cost/pricing.js';
import type { S3Bucket } from '../output/s3-bucket.js';
import { checkBatchName, OutputStore } from '../output/storage.js';

export const DEFAULT_LINK_HOURS = 24;
/** SigV4 presigned URLs are valid for 7 days at most. */
export const MAX_LINK_HOURS = 168;
/** Links signed at once: signing is local (no request), so this only bounds the cards held. */
const LINK_CONCURRENCY = 16;

export interface BucketGalleryOptions {
  /** `s3://bucket/prefix`. */
  out: string;
  batch: string;
  /** Where to write the page; default `bucketPagePath(batch)`. */
  page?: string;
  prices: PriceTable;
  /** How long the image links work. @default DEFAULT_LINK_HOURS */
  linkHours?: number;
  generatedAt?: Date;
  /** Where the bucket's settings are read. @default process.env */
  env?: NodeJS.ProcessEnv;
}

/** `./gallery-<batch>.html`, a sub-batch's `/` as `_` so the page is one file here. */
function bucketPagePath(batch: string): string {
  return resolve(`gallery-${batch.replaceAll('/', '_')}.html`);
}

/** Writes the page of a batch in a bucket, with presigned image links; returns what it shows. */
export async function buildBucketGallery(options: BucketGalleryOptions): Promise<GallerySummary> {
  const problem = checkBatchName(options.batch);
  if (problem) throw new UsageError(problem);
  const file = resolve(options.page ?? bucketPagePath(options.batch));
  if ((await stat(file).catch(() => undefined))?.isDirectory()) throw new UsageError(`${file} is a folder: give the page another name with --page`);
  const store = new OutputStore(options.out, { env: options.env });
  const bucket = store.bucket!;
  try {
    await bucket.check();
    const data = await readBatchPage(store, options.batch, options.prices);
    const folder = bucket.locate(options.batch);
    if (data.rows.length === 0 && data.unreadable.length === 0) throw new UsageError(`no sidecars under ${folder}/: batch "${options.batch}" has no outputs there (check --out or TOKENHOT_OUT_DIR)`);
    const hours = options.linkHours ?? DEFAULT_LINK_HOURS;
    const seconds = hours * 3600;
    const generatedAt = options.generatedAt ?? new Date();
    return await writeGalleryPage(file, data, {
      batch: options.batch,
      folder,
      generatedAt,
      show: { kind: 'links', hours, expiresAt: new Date(generatedAt.getTime() + seconds * 1000), origin: await originOf(bucket, store.nameOf(options.batch, 'x.png'), seconds) },
      concurrency: LINK_CONCURRENCY,
      imagesOf: (row) => linksOf(row, store, bucket, options.batch, seconds),
    });
  } finally {
    bucket.close();
  }
}

/** The origin every presigned URL of this bucket has (the page's policy lets images come from it). */
async function originOf(bucket: S3Bucket, name: string, seconds: number): Promise<string> {
  return new URL(await bucket.presignGet(name, seconds)).origin;
}

/** A row's images as presigned links; a name the sidecar gives that could leave the batch is not signed. */
async function linksOf(row: GalleryRow, store: OutputStore, bucket: S3Bucket, batch: string, seconds: number): Promise<Thumbnail[]> {
  return Promise.all(
    row.images.map(async ({ file }): Promise<Thumbnail> => {
      let name: string;
      try {
        name = store.nameOf(batch, file);
      } catch {
        return { file, href: '', problem: `unsafe file name ${file}` };
      }
      return { file, href: await bucket.presignGet(name, seconds), linked: true };
    }),
  );
}
