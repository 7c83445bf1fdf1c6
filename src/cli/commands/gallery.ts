/**
 * `tokenhot-batch gallery --batch NAME`: one self-contained HTML page of a batch's images, costs
 * and failed rows. For a local output (views/gallery.ts) the page has thumbnails and is by default
 * `<out>/<batch>.gallery.html`; for a bucket (views/gallery-bucket.ts) it links the full images
 * by presigned URLs that expire after `--link-hours`, and is by default `./gallery-<batch>.html`.
 */
import { loadConfig, type ConfigFlags } from '../../core/config.js';
import { UsageError } from '../../core/errors.js';
import { buildGallery, DEFAULT_THUMB_CONCURRENCY, DEFAULT_THUMB_WIDTH, type GallerySummary } from '../../views/gallery.js';
import { buildBucketGallery, DEFAULT_LINK_HOURS, MAX_LINK_HOURS } from '../../views/gallery-bucket.js';
import { loadPriceTable, type PriceTable } from '../../cost/pricing.js';
import { costText } from '../../cost/report.js';
import { isBucketUrl } from '../../output/location.js';
import { wholeFlag } from './flag-values.js';

export interface GalleryFlags extends ConfigFlags {
  batch?: string;
  output?: string;
  thumbWidth?: string;
  concurrency?: string;
  /** A bucket output's page file. */
  page?: string;
  /** How long a bucket output's image links work. */
  linkHours?: string;
}

export async function galleryCommand(flags: GalleryFlags): Promise<number> {
  if (!flags.batch) throw new UsageError('--batch: name the batch to show (its folder under --out)');
  // Only the output and the price file matter here; the rest of the config is not read.
  const config = loadConfig({ out: flags.out, prices: flags.prices });
  const prices = await loadPriceTable(config);
  const summary = isBucketUrl(config.outDir) ? await bucketGallery(flags, config.outDir, prices) : await folderGallery(flags, config.outDir, prices);
  reportSummary(flags.batch, summary);
  return 0;
}

async function folderGallery(flags: GalleryFlags, out: string, prices: PriceTable): Promise<GallerySummary> {
  for (const [flag, value] of [['--page', flags.page], ['--link-hours', flags.linkHours]] as const) {
    if (value !== undefined) throw new UsageError(`${flag} is for an output in a bucket (s3://); a folder's page is --output`);
  }
  if (flags.output !== undefined && flags.output.trim() === '') throw new UsageError('--output: give a file name');
  return buildGallery({
    out,
    batch: flags.batch!,
    output: flags.output,
    prices,
    thumbWidth: wholeFlag('--thumb-width', flags.thumbWidth, DEFAULT_THUMB_WIDTH, 32, 1024),
    concurrency: wholeFlag('--concurrency', flags.concurrency, DEFAULT_THUMB_CONCURRENCY, 1, 64),
  });
}

async function bucketGallery(flags: GalleryFlags, out: string, prices: PriceTable): Promise<GallerySummary> {
  // A bucket's page makes no thumbnails (see views/gallery-bucket.ts), and is written where --page says.
  for (const [flag, value] of [['--thumb-width', flags.thumbWidth], ['--concurrency', flags.concurrency]] as const) {
    if (value !== undefined) throw new UsageError(`${flag}: a bucket's page makes no thumbnails (it links the full images)`);
  }
  if (flags.output !== undefined) throw new UsageError('--output is for a local output folder; a bucket\'s page is written where --page says');
  if (flags.page !== undefined && flags.page.trim() === '') throw new UsageError('--page: give a file name');
  return buildBucketGallery({
    out,
    batch: flags.batch!,
    ...(flags.page !== undefined ? { page: flags.page } : {}),
    prices,
    linkHours: wholeFlag('--link-hours', flags.linkHours, DEFAULT_LINK_HOURS, 1, MAX_LINK_HOURS),
  });
}

function reportSummary(batch: string, summary: GallerySummary): void {
  const cost = costText(summary.ledger.totals);
  const shown = summary.links > 0 ? `${summary.links} image links` : `${summary.thumbnails} thumbnails`;
  process.stderr.write(
    `gallery of batch ${batch} written to ${summary.file}\n` +
      `  ${summary.rows} rows (${summary.done} done, ${summary.failed} failed), ${summary.images} images, ${shown}; ledger: ${summary.ledger.totals.images} images, ${summary.ledger.totals.failedRows} failed answers, ${cost}\n`,
  );
  if (summary.problems > 0) process.stderr.write(`warning: ${summary.problems} image(s) could not be previewed (see the page)\n`);
  if (summary.unreadableSidecars > 0) process.stderr.write(`warning: ${summary.unreadableSidecars} JSON file(s) in the batch folder are not readable sidecars (see the page)\n`);
  for (const warning of summary.ledger.warnings) process.stderr.write(`warning: ${warning}\n`);
}
