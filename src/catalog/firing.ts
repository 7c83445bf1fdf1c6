/**
 * One firing of a catalog job: read the CSV, hash each row's content, queue what the mode asks
 * for (incremental: rows new or changed since their last finished image; full: every row) into
 * the images queue under the firing's batch and budget, and record what it did. Rows an earlier
 * firing parked over budget are taken over by this one (catalog/takeover.ts).
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { Queue } from 'bullmq';
import type { BatchState } from '../queue/batch-state.js';
import { batchNameOf, type CatalogDefinition } from './definition.js';
import type { CatalogRun, CatalogState } from './state.js';
import { enqueueCatalogRows, setBudgetAndRelease } from '../queue/enqueue.js';
import { DEFAULT_MODEL } from '../providers/models.js';
import { usdToPico, type PriceTable } from '../cost/pricing.js';
import { imageJobOptions, type ImageJobData } from '../queue/queue.js';
import type { RetryPolicy } from '../run/retry-policy.js';
import { FileHashes, rowContentHash } from '../rows/content-hash.js';
import { takeOverParkedRows } from './takeover.js';
import { PhotoCache } from '../rows/photo-cache.js';
import { formatProblem, readRows, rowChecks, type RowProblem } from '../rows/csv.js';
import type { BatchRow } from '../core/types.js';

export interface FiringDeps {
  images: Queue<ImageJobData>;
  batches: BatchState;
  catalogs: CatalogState;
  retry: RetryPolicy;
  /** Model for rows and definitions that name none. */
  defaultModel?: string;
  /** With a budget, rows of a model without a price here are refused. */
  prices?: PriceTable;
  /** Where photos named by URL are kept (`<out>/.cache/photos`); unset, they count by their URL. */
  photosDir?: string;
}

/** Thrown for a firing that cannot run (CSV missing): the run is recorded as failed, the schedule stays. */
export class FiringError extends Error {}

const CHUNK = 500;
/** Longest a firing may hold its catalog's lock; firings only read a CSV and add jobs. */
const LOCK_MS = 10 * 60_000;

export async function runFiring(definition: CatalogDefinition, firedAt: Date, deps: FiringDeps): Promise<CatalogRun> {
  const batch = batchNameOf(definition, firedAt);
  const run: CatalogRun = {
    name: definition.name,
    batch,
    mode: definition.mode,
    firedAt: firedAt.toISOString(),
    finishedAt: '',
    status: 'ok',
    enqueued: 0,
    unchanged: 0,
    stillQueued: 0,
    takenOver: 0,
    rejected: 0,
    rejectedRows: [],
  };
  const finish = async (status: CatalogRun['status'], reason?: string): Promise<CatalogRun> => {
    run.status = status;
    if (reason) run.reason = reason;
    run.finishedAt = new Date().toISOString();
    await deps.catalogs.recordRun(run);
    return run;
  };

  const token = randomBytes(8).toString('hex');
  // Names this firing's jobs: its start time, unique enough (one firing of a job at a time).
  const firing = Date.now().toString(36);
  if (!(await deps.catalogs.lock(definition.name, token, LOCK_MS))) {
    return finish('skipped', 'the previous firing of this catalog job was still running');
  }
  // A photo named by URL is asked for once per firing: a photo replaced at the shop changes the hashes of its rows.
  const photos = deps.photosDir ? new PhotoCache(deps.photosDir) : undefined;
  try {
    try {
      const info = await stat(definition.csv);
      if (!info.isFile()) throw new Error('not a file');
    } catch (error) {
      const reason = `CSV ${definition.csv} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); the schedule stays, the next firing tries again`;
      await finish('failed', reason);
      throw new FiringError(`catalog ${definition.name}: ${reason}`);
    }

    await deps.batches.register(batch, { csv: definition.csv, catalog: definition.name });
    const budgetPico = definition.budgetUsd === undefined ? undefined : usdToPico(definition.budgetUsd);
    if (budgetPico !== undefined) await setBudgetAndRelease(deps.images, deps.batches, batch, budgetPico);
    run.takenOver = (await takeOverParkedRows(definition.name, batch, deps)).rowIds.size;

    const files = new FileHashes(photos?.contentHash);
    const jobOptions = imageJobOptions(deps.retry);
    const rejected: RowProblem[] = [];
    let chunk: BatchRow[] = [];

    const flush = async (): Promise<void> => {
      if (chunk.length === 0) return;
      const rows = chunk;
      chunk = [];
      for (const row of rows) row.contentHash = await rowContentHash(row, files);
      const known = await deps.catalogs.known(definition.name, rows.map((row) => row.id));
      const wanted: BatchRow[] = [];
      rows.forEach((row, index) => {
        // Queued with this very content by an earlier firing and not finished yet.
        if (known.pending[index] === row.contentHash) run.stillQueued += 1;
        else if (definition.mode === 'incremental' && known.done[index] === row.contentHash) run.unchanged += 1;
        else wanted.push(row);
      });
      await enqueueCatalogRows(deps.images, deps.batches, batch, wanted, jobOptions, definition.name, firing);
      await deps.catalogs.markPending(definition.name, new Map(wanted.map((row) => [row.id, row.contentHash!])));
      run.enqueued += wanted.length;
    };

    const defaults = { model: definition.defaults.model ?? deps.defaultModel ?? DEFAULT_MODEL, aspectRatio: definition.defaults.aspectRatio, imageSize: definition.defaults.imageSize };
    try {
      for await (const read of readRows(definition.csv, rowChecks(defaults, budgetPico, deps.prices, photos ? { photos } : {}))) {
        if ('problem' in read) {
          rejected.push(read.problem);
          continue;
        }
        chunk.push({ ...read.row, batch });
        if (chunk.length >= CHUNK) await flush();
      }
      await flush();
    } catch (error) {
      const reason = `CSV ${definition.csv} could not be read to the end: ${(error as Error).message}`;
      await finish('failed', reason);
      throw new FiringError(`catalog ${definition.name}: ${reason}`);
    }
    run.rejected = rejected.length;
    run.rejectedRows = rejected.slice(0, 20).map(formatProblem);
    return await finish('ok');
  } finally {
    await photos?.close();
    await deps.catalogs.unlock(definition.name, token);
  }
}
