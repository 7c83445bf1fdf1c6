/** Flag sets several commands share, and the words of their help they share. */
import type { Command } from 'commander';

/** How a file is read (`run`, `enqueue`, `estimate`): its delimiter and the defaults of its rows' empty cells. */
export const csvFlags = (command: Command): Command =>
  command
    .option('--model <id>', 'model for rows that name none (env TOKENHOT_MODEL)')
    .option('--aspect-ratio <ratio>', 'aspect ratio for rows that name none, e.g. 16:9')
    .option('--image-size <size>', 'image size for rows that name none: 512, 1K, 2K, 4K (1k works too)')
    .option('--delimiter <char>', 'field delimiter: , or ; or tab (default: detected from the header line)')
    .option('--job <file>', 'instead of a CSV: a job definition (jobs/*.yaml): its CSV, or its product feed made into rows by its shots, with its defaults, budget and name as the batch');

/** `--notify URL`, repeatable: the batch's webhook receivers (notify/). */
export const notifyFlag = (command: Command): Command =>
  command.option(
    '--notify <url>',
    'webhook URL to POST signed events to when the batch finishes, reaches its budget or stops on a fatal error (repeatable; needs TOKENHOT_WEBHOOK_SECRET; replaces a job\'s notify:)',
    (url: string, urls: string[] = []) => [...urls, url],
  );

export const pricesFlag = (command: Command): Command => command.option('--prices <file>', 'price file (JSON or YAML) over the built-in prices (env TOKENHOT_PRICES)');

/** What a cost depends on: the prices, and whether text is asked for beside the image. */
export const costFlags = (command: Command): Command => pricesFlag(command).option('--image-only', 'ask for IMAGE only instead of TEXT and IMAGE');

export const attemptsFlag = (command: Command): Command => command.option('--attempts <n>', 'attempts per row for transient errors (default 5; 429s do not count)');

/** Flags of the commands that call the endpoint. */
export const commonFlags = (command: Command): Command =>
  costFlags(
    attemptsFlag(
      command
        .option('--out <dir>', 'output folder, or s3://bucket/prefix (env TOKENHOT_OUT_DIR; default ./output; wins over a job\'s out:)', undefined)
        .option('--concurrency <n>', 'calls in flight at once (default 8)', undefined)
        .option('--base-url <url>', 'endpoint base URL (env TOKENHOT_BASE_URL)')
        .option('--timeout <seconds>', 'longest wait for one answer (default 600)'),
    ),
  );

/** What the commands that call the endpoint read, and what a file refused means. */
export const CALL_ENV = ['TOKENHOT_API_KEY', 'TOKENHOT_BASE_URL', 'TOKENHOT_OUT_DIR', 'TOKENHOT_MODEL', 'TOKENHOT_PRICES'] as const;
export const REFUSED = 'bad usage or configuration, or a file refused (--strict)';
