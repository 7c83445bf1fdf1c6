/**
 * The producer: a CSV, validated row by row as it streams, into the images queue in chunks.
 * Job ids come from batch and row id, and rows already queued (or done) are skipped, so
 * enqueueing the same file again adds nothing.
 */
import type { JobsOptions, Queue } from 'bullmq';
import { BatchState } from './batch-state.js';
import type { Progress, ProgressState } from '../run/progress.js';
import { catalogJobIdFor, imageJobOptions, jobIdFor, type ImageJobData } from './queue.js';
import type { RetryPolicy } from '../run/retry-policy.js';
import type { PriceTable } from '../cost/pricing.js';
import { rejectedRowCount, rowChecks, strictRejection, type CsvReading, type RowDefaults, type RowProblem } from '../rows/csv.js';
import type { BatchRow, Deliver } from '../core/types.js';
import { csvSource, type RowSource } from '../rows/row-source.js';
import { connectRedis, type QueueSettings } from './queue.js';
import { UsageError } from '../core/errors.js';

export interface EnqueueOptions {
  csvPath: string;
  /** Where the rows come from when not the CSV at `csvPath` (a feed job's shots). */
  source?: RowSource;
  batch: string;
  defaults: RowDefaults;
  /** The delimiter and what to do with unknown model ids (see `CsvReading`). */
  reading?: CsvReading;
  retry: RetryPolicy;
  strict?: boolean;
  /** Sets (or, enqueueing again, changes) the batch's budget. */
  budgetPico?: bigint;
  /** With a budget, rows of a model without a price here are refused. */
  prices?: PriceTable;
  /** Queue again rows that failed on a billed answer too (billed again); unbilled failures always come back. */
  retryFailed?: boolean;
  /** The batch's webhook URLs (`--notify`): they replace earlier ones; unset keeps them. */
  notify?: readonly string[];
  /** The job (`--job`) whose rows these are: the worker that settles the batch updates `latest/<job>/`. */
  job?: string;
  /** The job's `deliver:`, kept in the batch's meta for the worker that writes its manifest. */
  deliver?: Deliver;
  /** The batch's own output (`--out`, a job's `out:`): every row carries it, and workers write the batch there (see `batchOutput`). */
  out?: string;
  /** Rows per addBulk call. @default 500 */
  chunkSize?: number;
  progress?: Progress;
}

export interface EnqueueSummary {
  batch: string;
  added: number;
  /** Rows of the file already in the queue or done before. */
  alreadyQueued: number;
  /** Every problem of the rejected rows (several for a row with several bad cells: `rejectedRowCount`). */
  rejected: RowProblem[];
}

const sourceOf = (options: EnqueueOptions): RowSource => options.source ?? csvSource(options.csvPath);

/** Reads the file once without queuing anything: `--strict` refuses it before the first job. */
async function checkWholeFile(options: EnqueueOptions): Promise<void> {
  const rejected: RowProblem[] = [];
  for await (const reads of sourceOf(options).read(rowChecks(options.defaults, options.budgetPico, options.prices, options.reading))) {
    for (const read of reads) if ('problem' in read) rejected.push(read.problem);
  }
  if (rejected.length > 0) throw strictRejection(options.csvPath, rejected);
}

/** Chunks on their way to Redis while the next one is read (see `enqueueCsv`). */
const SENDS_IN_FLIGHT = 2;

export async function enqueueCsv(queue: Queue<ImageJobData>, batches: BatchState, options: EnqueueOptions): Promise<EnqueueSummary> {
  try {
    return await enqueueAll(queue, batches, options);
  } finally {
    // Also after a refusal (`--strict`, another output) or a file gone bad: the bar ends before
    // the error is said, and on a terminal it gives the cursor back.
    options.progress?.stop();
  }
}

async function enqueueAll(queue: Queue<ImageJobData>, batches: BatchState, options: EnqueueOptions): Promise<EnqueueSummary> {
  if (options.strict) await checkWholeFile(options);
  const summary: EnqueueSummary = { batch: options.batch, added: 0, alreadyQueued: 0, rejected: [] };
  const chunkSize = options.chunkSize ?? 500;
  const jobOptions = imageJobOptions(options.retry);
  const out = await batchOutput(batches, options.batch, options.out);
  await batches.register(options.batch, {
    csv: options.csvPath,
    ...(options.notify && options.notify.length > 0 ? { notify: JSON.stringify(options.notify) } : {}),
    ...(options.job ? { job: options.job } : {}),
    ...(options.deliver ? { deliver: options.deliver } : {}),
    ...(out ? { out } : {}),
  });
  if (options.budgetPico !== undefined) await setBudgetAndRelease(queue, batches, options.batch, options.budgetPico);

  // Chunks are sent while the next ones are read and checked, and a chunk's jobs are built while
  // Redis still adds the previous chunk's: reading the CSV and building jobs (this process's CPU)
  // overlap with adding them (Redis's). Jobs are still added in file order (a chunk's addBulk
  // follows the reply to its "already queued" check, and the replies come in order on the one
  // connection), each chunk is marked queued only once its jobs exist, and at most
  // SENDS_IN_FLIGHT + 1 chunks are held.
  let chunk: BatchRow[] = [];
  const inFlight: Promise<void>[] = [];
  // Most batches have no failed row: then no chunk needs to look for one.
  const failedBefore = (await batches.failedCount(options.batch)) > 0;
  const send = async (rows: BatchRow[]): Promise<void> => {
    const added = await enqueueRows(queue, batches, options.batch, rows, jobOptions, { retryFailed: options.retryFailed, failedBefore, out });
    summary.added += added.length;
    summary.alreadyQueued += rows.length - added.length;
    options.progress?.update(progressOf(summary));
  };
  const flush = async (): Promise<void> => {
    if (chunk.length > 0) {
      const sending = send(chunk);
      chunk = [];
      // Its failure is thrown where it is awaited (below, or at the end); this only keeps it from
      // counting as unhandled meanwhile.
      sending.catch(() => undefined);
      inFlight.push(sending);
    }
    while (inFlight.length > SENDS_IN_FLIGHT) await inFlight.shift();
  };

  try {
    for await (const reads of sourceOf(options).read(rowChecks(options.defaults, options.budgetPico, options.prices, options.reading))) {
      for (const read of reads) {
        if ('problem' in read) {
          summary.rejected.push(read.problem);
          continue;
        }
        // The row is this loop's alone: giving it its batch beats copying 100k rows.
        const row: BatchRow = Object.assign(read.row, { batch: options.batch });
        chunk.push(row);
        if (chunk.length >= chunkSize) await flush();
      }
    }
    await flush();
    while (inFlight.length > 0) await inFlight.shift();
  } catch (error) {
    // A file that turns bad halfway (or a Redis error) ends the run only once the chunks on their
    // way are settled.
    await Promise.allSettled(inFlight);
    throw error;
  }
  // The total was estimated from line breaks (a quoted prompt may hold some): end on the count.
  const final = progressOf(summary);
  options.progress?.setTotal(final.done + (final.skipped ?? 0) + final.failed);
  options.progress?.update(final);
  return summary;
}

/**
 * The output a batch's rows carry: the one it was first given, also when enqueued again without
 * one. Another one is refused, as is one for a batch whose rows went to each worker's own output:
 * either would split the batch (and its manifest) across two places.
 */
async function batchOutput(batches: BatchState, batch: string, given: string | undefined): Promise<string | undefined> {
  const meta = await batches.meta(batch);
  if (meta.out !== undefined) {
    if (given !== undefined && given !== meta.out) throw new UsageError(`batch ${batch} is written to ${meta.out}, not ${given}: enqueue it with that output (or none), or as another --batch`);
    return meta.out;
  }
  if (given !== undefined && (await batches.counts(batch)).rows > 0) {
    throw new UsageError(`batch ${batch} has rows written to each worker's own output; it cannot be given the output ${given} now (it would be split): enqueue the file as another --batch`);
  }
  return given;
}

/** Enqueue's progress: rows added, already queued (enqueueing again adds none), rejected. */
function progressOf(summary: EnqueueSummary): ProgressState {
  return { done: summary.added, skipped: summary.alreadyQueued, failed: rejectedRowCount(summary.rejected), spendPico: 0n };
}

/**
 * Adds the rows of a batch that were never queued in it, in one addBulk; returns those added.
 * The batch state is marked after the jobs exist, so a crash in between only means they are
 * added again later, which BullMQ ignores (same job ids).
 */
export async function enqueueRows(
  queue: Queue<ImageJobData>,
  batches: BatchState,
  batch: string,
  rows: BatchRow[],
  jobOptions: JobsOptions,
  { retryFailed = false, failedBefore = true, out }: { retryFailed?: boolean; failedBefore?: boolean; out?: string | undefined } = {},
): Promise<BatchRow[]> {
  const ids = rows.map((row) => row.id);
  const fresh = new Set(await batches.notYetQueued(batch, ids));
  // Rows that failed on a billed answer come back only when asked (--retry-failed: billed again);
  // rows refused without a bill (a 400 or 404, attempts used up on errors) come back on their own,
  // as a re-run of `run` does them again in-process.
  const failed = failedBefore ? await batches.failedAmong(batch, ids, !retryFailed) : [];
  for (const rowId of failed) {
    // A failed job keeps its id in Redis (and BullMQ would not add it again): remove it first.
    const job = await queue.getJob(jobIdFor(batch, rowId));
    if (job && (await job.isFailed())) await job.remove();
    fresh.add(rowId);
  }
  await batches.clearFailed(batch, failed);
  const toAdd = rows.filter((row) => fresh.has(row.id));
  if (toAdd.length === 0) return [];
  await queue.addBulk(toAdd.map((row) => ({ name: 'image', data: { row, ...(out ? { out } : {}) }, opts: { ...jobOptions, jobId: jobIdFor(batch, row.id) } })));
  await batches.markQueued(batch, toAdd.map((row) => row.id));
  return toAdd;
}

/**
 * Adds rows a catalog firing chose (by content hash, see catalog/firing.ts), each as a job of its
 * own for this firing, so a row gets a new job even in a batch it was done in.
 */
export async function enqueueCatalogRows(
  queue: Queue<ImageJobData>,
  batches: BatchState,
  batch: string,
  rows: BatchRow[],
  jobOptions: JobsOptions,
  catalog: string,
  firing: string,
  out?: string,
): Promise<void> {
  if (rows.length === 0) return;
  await queue.addBulk(
    rows.map((row) => ({
      name: 'image',
      data: { row, catalog: { name: catalog }, ...(out ? { out } : {}) },
      opts: { ...jobOptions, jobId: catalogJobIdFor(batch, row.id, row.contentHash!, firing) },
    })),
  );
  await batches.markRequeued(batch, rows.map((row) => row.id));
}

/** Stores a batch's webhook URLs before `run` queues it (the worker that finishes it reads them). */
export async function rememberNotifyUrls(settings: QueueSettings, batch: string, urls: readonly string[]): Promise<void> {
  if (urls.length === 0) return;
  const client = await connectRedis(settings.redisUrl, 'producer');
  try {
    await new BatchState(client, settings.prefix).setNotifyUrls(batch, urls);
  } finally {
    client.disconnect();
  }
}

/**
 * Sets a batch's budget and sets going the rows parked over budget: workers park them again if
 * the new cap is still reached.
 */
export async function setBudgetAndRelease(queue: Queue<ImageJobData>, batches: BatchState, batch: string, budgetPico: bigint | undefined): Promise<number> {
  await batches.setBudget(batch, budgetPico);
  let released = 0;
  for (const jobId of await batches.takeOverBudget(batch)) {
    const job = await queue.getJob(jobId);
    if (job && (await job.isDelayed())) {
      await job.promote().catch(() => undefined);
      released += 1;
    }
  }
  return released;
}
