/**
 * The operators' commands, `dashboard` and `gallery`, registered on the CLI's program by one call
 * in program.ts. Their modules load only when one of them runs (as program.ts does for every
 * command): other commands need not load Express, Bull Board or sharp. Errors they throw
 * (UsageError: exit 2) go to the caller's handler like any other command's.
 */
import type { Command } from 'commander';
import { DEFAULT_DASHBOARD_HOST, DEFAULT_DASHBOARD_PORT, EXIT, helpText, QUEUE_ENV } from '../help.js';
import type { DashboardFlags } from './dashboard.js';
import type { GalleryFlags } from './gallery.js';

export function registerOperatorCommands(program: Command): void {
  program
    .command('dashboard')
    .description('Bull Board for the images and catalog queues, and a page of batches with counts, spend and failed rows (REDIS_URL)')
    .option('--port <port>', `port to listen on (default ${DEFAULT_DASHBOARD_PORT}; 0 for any free port)`)
    .option('--host <host>', `address to listen on (default ${DEFAULT_DASHBOARD_HOST}); any other than loopback needs TOKENHOT_DASHBOARD_USER and TOKENHOT_DASHBOARD_PASSWORD`)
    .option('--prefix <prefix>', 'queue key prefix (env TOKENHOT_QUEUE_PREFIX)')
    .option('--refresh <seconds>', 'reload the batches page this often (default 10; 0: never)')
    .option('--failed <n>', 'failed rows listed per batch (default 20)')
    .addHelpText(
      'after',
      helpText({
        environment: [...QUEUE_ENV, 'TOKENHOT_DASHBOARD_USER', 'TOKENHOT_DASHBOARD_PASSWORD'],
        exits: [[0, 'stopped by Ctrl-C or SIGTERM'], [2, 'bad usage, a --host beyond loopback without a password, or the port is taken']],
      }),
    )
    .action(async (flags: DashboardFlags) => {
      process.exitCode = await (await import('./dashboard.js')).dashboardCommand(flags);
    });

  program
    .command('gallery')
    .description('one self-contained HTML page of a batch: thumbnails, prompts, tokens and cost per image, failed rows, ledger totals')
    .option('--batch <name>', 'the batch (required)')
    .option('--out <dir>', 'output folder or s3://bucket/prefix (env TOKENHOT_OUT_DIR)')
    .option('--output <file>', 'where to write the page (default <out>/<batch>.gallery.html)')
    .option('--prices <file>', 'price file (JSON or YAML) over the built-in prices (env TOKENHOT_PRICES)')
    .option('--thumb-width <px>', 'thumbnail width (default 256)')
    .option('--concurrency <n>', 'thumbnails made at once (default 8)')
    .option('--page <file>', 'a bucket output: where to write the page (default ./gallery-<batch>.html); it links the full images by presigned URLs, no thumbnails')
    .option('--link-hours <n>', 'a bucket output: hours the image links work, 1 to 168 (default 24); after that the page shows no images')
    .addHelpText('after', helpText({ environment: ['TOKENHOT_OUT_DIR', 'TOKENHOT_PRICES'], exits: [EXIT.ok, [2, 'bad usage, or a batch with no folder']] }))
    .action(async (flags: GalleryFlags) => {
      process.exitCode = await (await import('./gallery.js')).galleryCommand(flags);
    });
}
