/**
 * `tokenhot-batch enqueue <csv> --batch NAME`: validate and add rows to the images queue.
 */
import { parseBudget } from '../budget.js';
import type { ConfigFlags } from '../config.js';
import { enqueueCsv, type EnqueueSummary } from '../enqueue.js';
import { UsageError } from '../errors.js';
import { createProgress } from '../progress.js';
import { withQueue } from './queue-connection.js';
import { formatProblem } from '../rows.js';
import { checkBatchName } from '../storage.js';

export interface EnqueueFlags extends ConfigFlags {
  batch?: string;
  strict?: boolean;
  prefix?: string;
  plain?: boolean;
  budgetUsd?: string;
}

export function formatEnqueueSummary(summary: EnqueueSummary): string {
  const lines = [`batch ${summary.batch}: ${summary.added} added, ${summary.alreadyQueued} already queued or done, ${summary.rejected.length} rejected`];
  if (summary.rejected.length > 0) {
    lines.push('rejected rows (fix the file and enqueue again; queued rows are not added twice):');
    for (const problem of summary.rejected) lines.push(`  ${formatProblem(problem)}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function enqueueCommand(csvPath: string, flags: EnqueueFlags): Promise<number> {
  const batch = flags.batch;
  if (!batch) throw new UsageError('enqueue needs --batch NAME');
  const problem = checkBatchName(batch);
  if (problem) throw new UsageError(problem);
  return withQueue(flags, async ({ config, images, batches }) => {
    const summary = await enqueueCsv(images, batches, {
      csvPath,
      batch,
      defaults: { model: config.model, aspectRatio: config.aspectRatio, imageSize: config.imageSize },
      retry: config.retry,
      strict: flags.strict,
      budgetPico: parseBudget(flags.budgetUsd),
      progress: createProgress({ label: `enqueue ${batch}`, total: 0, plain: flags.plain }),
    });
    process.stdout.write(formatEnqueueSummary(summary));
    return summary.rejected.length > 0 ? 1 : 0;
  });
}
