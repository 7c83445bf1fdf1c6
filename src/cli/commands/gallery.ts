/**
 * `tokenhot-batch gallery --batch NAME`: one self-contained HTML page of a batch's images, costs
 * and failed rows (see views/gallery.ts), by default `<out>/<batch>.gallery.html`.
 */
import { loadConfig, type ConfigFlags } from '../../core/config.js';
import { UsageError } from '../../core/errors.js';
import { buildGallery, DEFAULT_THUMB_CONCURRENCY, DEFAULT_THUMB_WIDTH } from '../../views/gallery.js';
import { loadPriceTable } from '../../cost/pricing.js';
import { costText } from '../../cost/report.js';
import { wholeFlag } from './flag-values.js';

export interface GalleryFlags extends ConfigFlags {
  batch?: string;
  output?: string;
  thumbWidth?: string;
  concurrency?: string;
}

export async function galleryCommand(flags: GalleryFlags): Promise<number> {
  if (!flags.batch) throw new UsageError('--batch: name the batch to show (its folder under --out)');
  if (flags.output !== undefined && flags.output.trim() === '') throw new UsageError('--output: give a file name');
  const thumbWidth = wholeFlag('--thumb-width', flags.thumbWidth, DEFAULT_THUMB_WIDTH, 32, 1024);
  const concurrency = wholeFlag('--concurrency', flags.concurrency, DEFAULT_THUMB_CONCURRENCY, 1, 64);
  // Only the output folder and the price file matter here; the rest of the config is not read.
  const config = loadConfig({ out: flags.out, prices: flags.prices });
  const summary = await buildGallery({
    out: config.outDir,
    batch: flags.batch,
    output: flags.output,
    prices: await loadPriceTable(config),
    thumbWidth,
    concurrency,
  });
  const cost = costText(summary.ledger.totals);
  process.stderr.write(
    `gallery of batch ${flags.batch} written to ${summary.file}\n` +
      `  ${summary.rows} rows (${summary.done} done, ${summary.failed} failed), ${summary.images} images, ${summary.thumbnails} thumbnails; ledger: ${summary.ledger.totals.images} images, ${summary.ledger.totals.failedRows} failed answers, ${cost}\n`,
  );
  if (summary.problems > 0) process.stderr.write(`warning: ${summary.problems} image(s) could not be previewed (see the page)\n`);
  if (summary.unreadableSidecars > 0) process.stderr.write(`warning: ${summary.unreadableSidecars} JSON file(s) in the batch folder are not readable sidecars (see the page)\n`);
  for (const warning of summary.ledger.warnings) process.stderr.write(`warning: ${warning}\n`);
  return 0;
}
