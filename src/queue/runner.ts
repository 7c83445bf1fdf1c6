/**
 * `run <csv>` with REDIS_URL set: enqueue the file, work the queue in this process until it is
 * drained, then the same summary and report as the in-process run.
 */
import { BatchState } from './batch-state.js';
import type { Config } from '../core/config.js';
import { enqueueCsv } from './enqueue.js';
import type { Logger } from '../core/log.js';
import { countSettled, createProgress, type ProgressState } from '../run/progress.js';
import { connectRedis, imagesQueue, queueSettings } from './queue.js';
import { refusePausedQueue, startWorker, type WorkerExit } from './worker.js';
import type { RunSummary } from '../local/runner.js';
import type { CsvReading } from '../rows/csv.js';
import { loadPriceTable } from '../cost/pricing.js';
import type { RowSource } from '../rows/row-source.js';
import type { Deliver } from '../core/types.js';

export interface QueueRunOptions {
  csvPath: string;
  /** Where the rows come from when not the CSV at `csvPath` (a feed job's shots). */
  source?: RowSource;
  /** The job (`--job`) the rows are of: its `latest/` view is updated when the batch settles. */
  job?: string;
  /** The job's `deliver:` (manifest and latest/: all, or only approved images). */
  deliver?: Deliver | undefined;
  /** The job's output (`out:`), carried by its rows for every worker. */
  out?: string | undefined;
  batch: string;
  /** The delimiter and what to do with unknown model ids (see `CsvReading`). */
  reading?: CsvReading;
  strict?: boolean;
  prefix?: string;
  plain?: boolean;
  budgetPico?: bigint;
  rpm?: number;
  retryFailed?: boolean;
}

export async function runCsvWithRedis(options: QueueRunOptions, config: Config, log: Logger): Promise<{ summary: RunSummary; exitCode: number; fatal?: string }> {
  const started = Date.now();
  const settings = queueSettings(config.redisUrl, options.prefix);
  const producer = await connectRedis(settings.redisUrl, 'producer');
  const queue = imagesQueue(settings, producer);
  const state = new BatchState(producer, settings.prefix);
  try {
    // Before anything is queued: a paused queue would keep the file's rows and run none.
    await refusePausedQueue(queue, state);
    const before = await state.counts(options.batch);
    const enqueued = await enqueueCsv(queue, state, {
      csvPath: options.csvPath,
      ...(options.source ? { source: options.source } : {}),
      ...(options.job ? { job: options.job } : {}),
      ...(options.deliver ? { deliver: options.deliver } : {}),
      ...(options.out ? { out: options.out } : {}),
      batch: options.batch,
      defaults: { model: config.model, aspectRatio: config.aspectRatio, imageSize: config.imageSize },
      reading: options.reading,
      retry: config.retry,
      strict: options.strict,
      budgetPico: options.budgetPico,
      prices: await loadPriceTable(config),
      retryFailed: options.retryFailed,
    });
    // Rows that failed before this run (and were not queued again): listed apart, as in-process.
    const failedEarlier = new Set((await state.failedRows(options.batch, 100_000)).map((row) => row.id));
    const progressState: ProgressState = { done: 0, failed: 0, spendPico: 0n };
    const progress = createProgress({ label: options.batch, total: Math.max(0, enqueued.added + enqueued.alreadyQueued - before.done - before.failed), plain: options.plain });
    let interrupted = false;
    let exit: WorkerExit;
    try {
      const worker = await startWorker(config, {
        settings,
        concurrency: config.concurrency,
        untilDrained: true,
        rpm: options.rpm,
        // `run` works its own file; scheduled catalog firings are for `work`.
        catalog: false,
        log,
        onSettled: (row, outcome) => {
          if (row.batch !== options.batch) return;
          countSettled(progressState, outcome);
          progress.update({ ...progressState });
        },
      });
      const onSignal = (): void => {
        interrupted = true;
        void worker.stop();
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      exit = await worker.done;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    } finally {
      // Also when the worker cannot start (an output that cannot be written, a paused queue):
      // the bar ends before the error is said.
      progress.stop();
    }

    const after = await state.counts(options.batch);
    const failedRows = await state.failedRows(options.batch, 1_000);
    const summary: RunSummary = {
      batch: options.batch,
      rows: enqueued.added + enqueued.alreadyQueued,
      rejected: enqueued.rejected,
      alreadyDone: before.done,
      // Queued rows are not compared with a changed file: their job id is taken (see README).
      changedSinceDone: [],
      alreadyFailed: failedRows.filter((row) => failedEarlier.has(row.id)).map((row) => ({ id: row.id, line: row.line, reason: row.reason })),
      done: after.done - before.done,
      failed: failedRows.filter((row) => !failedEarlier.has(row.id)).map((row) => ({ id: row.id, line: row.line, reason: row.reason })),
      notRun: Math.max(0, after.rows - after.done - after.failed - after.overBudget),
      overBudget: after.overBudget,
      ...(after.budgetPico !== undefined ? { budgetPico: after.budgetPico, batchSpendPico: after.spendPico } : {}),
      stopReason: interrupted ? 'interrupted' : exit.reason,
      spendPico: after.spendPico - before.spendPico,
      unpriced: progressState.unpriced ?? 0,
      elapsedMs: Date.now() - started,
    };
    const unfinished = summary.failed.length + summary.alreadyFailed.length + summary.rejected.length + summary.notRun + summary.overBudget;
    if (interrupted) return { summary, exitCode: 130 };
    return { summary, exitCode: exit.code !== 0 ? exit.code : unfinished > 0 ? 1 : 0, fatal: exit.code === 2 ? exit.reason : undefined };
  } finally {
    await queue.close();
    producer.disconnect();
  }
}
