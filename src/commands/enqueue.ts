/**
 * `tokenhot-batch enqueue <csv> --batch NAME`: validate and add rows to the images queue.
 */
import { BatchState } from '../batch-state.js';
import { parseBudget } from '../budget.js';
import { loadConfig, type ConfigFlags } from '../config.js';
import { enqueueCsv, type EnqueueSummary } from '../enqueue.js';
import { UsageError } from '../errors.js';
import { createProgress } from '../progress.js';
import { connectRedis, imagesQueue, queueSettings } from '../queue.js';
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
  if (!flags.batch) throw new UsageError('enqueue needs --batch NAME');
  const problem = checkBatchName(flags.batch);
  if (problem) throw new UsageError(problem);
  const config = loadConfig(flags);
  const settings = queueSettings(config.redisUrl, flags.prefix);
  const connection = await connectRedis(settings.redisUrl, 'producer');
  const queue = imagesQueue(settings, connection);
  try {
    const summary = await enqueueCsv(queue, new BatchState(connection, settings.prefix), {
      csvPath,
      batch: flags.batch,
      defaults: { model: config.model, aspectRatio: config.aspectRatio, imageSize: config.imageSize },
      retry: config.retry,
      strict: flags.strict,
      budgetPico: parseBudget(flags.budgetUsd),
      progress: createProgress({ label: `enqueue ${flags.batch}`, total: 0, plain: flags.plain }),
    });
    process.stdout.write(formatEnqueueSummary(summary));
    return summary.rejected.length > 0 ? 1 : 0;
  } finally {
    await queue.close();
    connection.disconnect();
  }
}
