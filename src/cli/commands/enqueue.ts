/**
 * `tokenhot-batch enqueue <csv>`: validate and add rows to the images queue, as the batch
 * `--batch` names (default: the file's name, as for `run`).
 */
import { parseBudget } from '../../run/budget.js';
import { createReadStream } from 'node:fs';
import { requireWebhookSecret, type ConfigFlags } from '../../core/config.js';
import { notifyUrlsOf } from '../../notify/targets.js';
import { enqueueCsv, type EnqueueSummary } from '../../queue/enqueue.js';
import { createProgress } from '../../run/progress.js';
import { withQueue } from './queue-connection.js';
import { formatProblem, rejectedRowCount } from '../../rows/csv.js';
import { loadPriceTable } from '../../cost/pricing.js';
import { csvInput, warnOnStderr, type CsvInputFlags } from './csv-input.js';
import { rowInput, type JobInputFlags } from './job-input.js';

export interface EnqueueFlags extends ConfigFlags, CsvInputFlags, JobInputFlags {
  batch?: string;
  prefix?: string;
  plain?: boolean;
  budgetUsd?: string;
  retryFailed?: boolean;
  /** `--notify`, repeatable. */
  notify?: string[];
}

export function formatEnqueueSummary(summary: EnqueueSummary): string {
  const lines = [`batch ${summary.batch}: ${summary.added} added, ${summary.alreadyQueued} already queued or done, ${rejectedRowCount(summary.rejected)} rejected`];
  if (summary.rejected.length > 0) {
    lines.push('rejected rows (fix the file and enqueue again; queued rows are not added twice):');
    for (const problem of summary.rejected) lines.push(`  ${formatProblem(problem)}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function enqueueCommand(csv: string | undefined, flags: EnqueueFlags): Promise<number> {
  return withQueue(flags, async ({ config: flagConfig, images, batches }) => {
    // Said after the progress bar, which a line written under it would break.
    const warnings: string[] = [];
    const input = await rowInput(csv, flags, flagConfig, (message) => warnings.push(message));
    const { config, batch } = input;
    const { reading } = csvInput(flags, config, (message) => warnings.push(message));
    // The workers sign with the secret; asking for it here catches a forgotten one before any row is queued.
    const notify = notifyUrlsOf(flags.notify, input.job?.notify);
    requireWebhookSecret(config, notify);
    const summary = await enqueueCsv(images, batches, {
      csvPath: input.path,
      source: input.source,
      batch,
      defaults: { model: config.model, aspectRatio: config.aspectRatio, imageSize: config.imageSize },
      reading,
      retry: config.retry,
      strict: flags.strict,
      budgetPico: parseBudget(input.budgetUsd),
      prices: await loadPriceTable(config),
      retryFailed: flags.retryFailed,
      notify,
      ...(input.job ? { job: input.job.name, ...(input.job.deliver ? { deliver: input.job.deliver } : {}) } : {}),
      ...(input.out ? { out: input.out } : {}),
      progress: createProgress({
        label: `enqueue ${batch}`,
        total: input.job?.feed ? 0 : await estimateRecords(input.path),
        plain: flags.plain,
        words: { done: 'added', skipped: 'already queued', failed: 'rejected' },
        spend: false,
      }),
    });
    warnings.forEach(warnOnStderr);
    process.stdout.write(formatEnqueueSummary(summary));
    return summary.rejected.length > 0 ? 1 : 0;
  });
}

/**
 * About how many records a CSV holds (its line breaks, less the header), for the progress bar:
 * one fast pass over the bytes, before the real reading. Quoted line breaks make it an
 * overestimate, which only makes the bar end a little early.
 */
async function estimateRecords(csvPath: string): Promise<number> {
  let lines = 0;
  let last = 0x0a;
  try {
    for await (const chunk of createReadStream(csvPath, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      for (let at = chunk.indexOf(0x0a); at !== -1; at = chunk.indexOf(0x0a, at + 1)) lines += 1;
      last = chunk[chunk.length - 1] ?? last;
    }
  } catch {
    return 0; // the real reading reports the problem
  }
  if (last !== 0x0a) lines += 1;
  return Math.max(0, lines - 1);
}
