/**
 * `tokenhot-batch status`: per batch rows waiting, active, delayed, done, failed, and spend so far
 * (read and rendered by queue/status.ts), once or with `--watch` until stopped.
 */
import { CatalogState } from '../../catalog/state.js';
import type { ConfigFlags } from '../../core/config.js';
import { BatchRates, readStatus, renderStatus } from '../../queue/status.js';
import { withQueue } from './queue-connection.js';
import { numberFlag, wholeFlag } from './flag-values.js';

export interface StatusFlags extends ConfigFlags {
  batch?: string;
  prefix?: string;
  watch?: boolean;
  interval?: string;
  failed?: string;
  format?: string;
}

export async function statusCommand(flags: StatusFlags): Promise<number> {
  const failedLimit = wholeFlag('--failed', flags.failed, 10, 0, 10_000);
  const intervalSeconds = numberFlag('--interval', flags.interval, 0.2) ?? 2;
  const rates = flags.watch ? new BatchRates() : undefined;
  return withQueue(flags, async ({ images, batches, connection, settings }) => {
    for (;;) {
      const status = await readStatus(images, batches, new CatalogState(connection, settings.prefix), { batch: flags.batch, failedLimit });
      const text =
        flags.format === 'json'
          ? `${JSON.stringify({ ...status, batches: status.batches.map(({ spendPico, budgetPico, ...rest }) => rest) }, null, 2)}\n`
          : renderStatus(status, rates?.observe(status));
      if (flags.watch && process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
      process.stdout.write(flags.watch ? `${new Date().toISOString()}\n${text}` : text);
      if (!flags.watch) return 0;
      await new Promise((resolve) => setTimeout(resolve, intervalSeconds * 1000));
    }
  });
}
