/**
 * One firing of a catalog job: read the prompt CSV or the feed (made into rows by its shot list),
 * queue what the mode asks for (firing-queue.ts) into the images queue under the firing's batch
 * and budget, and record what it did. Rows an earlier firing parked over budget are taken over by
 * this one (takeover.ts). A feed whose header lost columns since the last firing stops the
 * firing with the difference, before anything is queued or taken over. A definition with
 * `notify:` gives its URLs to the firing's batch (its `batch.finished`) and is told of the firing
 * itself (`catalog.firing_finished`, also when skipped or failed). A definition with `out:` has
 * its rows carry it: workers write the batch there, whatever their own output.
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { Queue } from 'bullmq';
import type { BatchState } from '../queue/batch-state.js';
import { batchNameOf, type CatalogDefinition } from './definition.js';
import type { CatalogRun, CatalogState } from './state.js';
import { setBudgetAndRelease } from '../queue/enqueue.js';
import { DEFAULT_MODEL } from '../providers/models.js';
import { usdToPico, type PriceTable } from '../cost/pricing.js';
import { imageJobOptions, type ImageJobData } from '../queue/queue.js';
import type { RetryPolicy } from '../run/retry-policy.js';
import { FileHashes } from '../rows/content-hash.js';
import { takeOverParkedRows } from './takeover.js';
import { PhotoCache, photoCacheDir } from '../rows/photo-cache.js';
import { formatProblem, rowChecks } from '../rows/csv.js';
import type { RowRead } from '../rows/problems.js';
import { csvSource, type RowSource } from '../rows/row-source.js';
import { feedSource } from './feed-source.js';
import { FiringQueue, type Regenerating } from './firing-queue.js';
import { rejectedRowsOf } from './rejected-rows.js';
import { newEvent } from '../notify/events.js';
import { UsageError } from '../core/errors.js';
import { isBucketUrl, localDirOf } from '../output/location.js';

export interface FiringDeps {
  images: Queue<ImageJobData>;
  batches: BatchState;
  catalogs: CatalogState;
  retry: RetryPolicy;
  /** Model for rows and definitions that name none. */
  defaultModel?: string;
  /** With a budget, rows of a model without a price here are refused. */
  prices?: PriceTable;
  /**
   * The firing's output (the job's `out:`, else the worker's): photos named by URL are kept in its
   * photo cache (this machine's spool for a bucket), review decisions read for `regenerate:` (local
   * folders only). Unset: photos count by their URL.
   */
  outDir?: string;
}

/** Thrown for a firing that cannot run (CSV missing): the run is recorded as failed, the schedule stays. */
export class FiringError extends Error {}

/** Longest a firing may hold its catalog's lock; firings only read a CSV and add jobs. */
const LOCK_MS = 10 * 60_000;

function newRun(definition: CatalogDefinition, batch: string, firedAt: Date): CatalogRun {
  return {
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
}

export async function runFiring(definition: CatalogDefinition, firedAt: Date, deps: FiringDeps): Promise<CatalogRun> {
  const batch = batchNameOf(definition, firedAt);
  const run = newRun(definition, batch, firedAt);
  const what = definition.feed ? 'feed' : 'CSV';
  const finish = async (status: CatalogRun['status'], reason?: string): Promise<CatalogRun> => {
    run.status = status;
    if (reason) run.reason = reason;
    run.finishedAt = new Date().toISOString();
    await deps.catalogs.recordRun(run);
    await announceFiring(definition, run, deps);
    return run;
  };
  const fail = async (reason: string): Promise<never> => {
    await finish('failed', reason);
    throw new FiringError(`catalog ${definition.name}: ${reason}`);
  };

  const token = randomBytes(8).toString('hex');
  if (!(await deps.catalogs.lock(definition.name, token, LOCK_MS))) {
    return finish('skipped', 'the previous firing of this catalog job was still running');
  }
  // A photo named by URL is asked for once per firing: a photo replaced at the shop changes the hashes of its rows.
  const photos = deps.outDir ? new PhotoCache(photoCacheDir(localDirOf(deps.outDir))) : undefined;
  try {
    const problem = await inputProblem(definition.csv);
    if (problem) await fail(`${what} ${definition.csv} cannot be read (${problem}); the schedule stays, the next firing tries again`);

    await deps.batches.register(batch, {
      csv: definition.csv,
      catalog: definition.name,
      ...(definition.notify ? { notify: JSON.stringify(definition.notify) } : {}),
      ...(definition.deliver ? { deliver: definition.deliver } : {}),
      ...(definition.out ? { out: definition.out } : {}),
    });
    const budgetPico = definition.budgetUsd === undefined ? undefined : usdToPico(definition.budgetUsd);
    if (budgetPico !== undefined) await setBudgetAndRelease(deps.images, deps.batches, batch, budgetPico);

    const source = definition.feed ? feedSource(definition.feed) : csvSource(definition.csv);
    const defaults = { model: definition.defaults.model ?? deps.defaultModel ?? DEFAULT_MODEL, aspectRatio: definition.defaults.aspectRatio, imageSize: definition.defaults.imageSize };
    const reads = source.read(rowChecks(defaults, budgetPico, deps.prices, photos ? { photos } : {}))[Symbol.asyncIterator]();
    // A feed is read whole by its first chunk: its header is known before anything is queued.
    const first = await reads.next().catch((error: unknown) =>
      fail(error instanceof UsageError ? `the job cannot run: ${(error as Error).message}` : `${what} ${definition.csv} could not be read: ${(error as Error).message}`),
    );
    const changed = await headerChange(definition, source, deps);
    if (changed) await fail(changed);
    run.takenOver = (await takeOverParkedRows(definition.name, batch, deps)).rowIds.size;

    // Names this firing's jobs: its start time, unique enough (one firing of a job at a time).
    const queue = new FiringQueue(definition, batch, Date.now().toString(36), deps, new FileHashes(photos?.contentHash), imageJobOptions(deps.retry), run, await regeneratingOf(definition, deps));
    try {
      for (let next: IteratorResult<RowRead[]> = first; !next.done; next = await reads.next()) for (const read of next.value) await queue.take(read);
      await queue.flush();
    } catch (error) {
      await fail(`${what} ${definition.csv} could not be read to the end: ${(error as Error).message}`);
    }
    run.rejected = queue.rejected.length;
    run.rejectedRows = queue.rejected.slice(0, 20).map(formatProblem);
    return await finish('ok');
  } finally {
    await photos?.close();
    await deps.catalogs.unlock(definition.name, token);
  }
}

/** `catalog.firing_finished` to the definition's URLs, through the worker's outbox. */
async function announceFiring(definition: CatalogDefinition, run: CatalogRun, deps: FiringDeps): Promise<void> {
  const outbox = deps.batches.outbox;
  if (!outbox || !definition.notify || definition.notify.length === 0) return;
  const { batch, status, enqueued, unchanged, stillQueued, takenOver, rejected, reason } = run;
  await outbox.send(definition.notify, newEvent('catalog.firing_finished', { catalog: definition.name, batch, status, enqueued, unchanged, stillQueued, takenOver: takenOver ?? 0, rejected, ...(reason ? { reason } : {}) }));
}

/** With `regenerate:`, the rows rejected in review since their last image, to make again. */
async function regeneratingOf(definition: CatalogDefinition, deps: FiringDeps): Promise<Regenerating | undefined> {
  if (!definition.regenerate || !deps.outDir || isBucketUrl(deps.outDir)) return undefined;
  const rows = await rejectedRowsOf(deps.outDir, await deps.catalogs.batches(definition.name));
  return { rows, guided: definition.regenerate === 'guided', outDir: deps.outDir };
}

/** Why the input file cannot be read, or undefined. */
async function inputProblem(path: string): Promise<string | undefined> {
  try {
    return (await stat(path)).isFile() ? undefined : 'not a file';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  }
}

/**
 * A feed whose header lost columns since the firing before (renamed or removed: its templates
 * and the team's mapping may no longer mean what they did): the difference, as the firing's
 * reason. Columns added are taken. `schedule sync` accepts the new header.
 */
async function headerChange(definition: CatalogDefinition, source: RowSource, deps: FiringDeps): Promise<string | undefined> {
  const columns = source.columns?.();
  if (!columns) return undefined;
  const before = await deps.catalogs.feedColumns(definition.name);
  const gone = before?.filter((column) => !columns.includes(column)) ?? [];
  if (gone.length === 0) {
    await deps.catalogs.setFeedColumns(definition.name, columns);
    return undefined;
  }
  const added = columns.filter((column) => !before!.includes(column));
  return (
    `the header of feed ${definition.csv} changed since the last firing: ${gone.map((c) => `"${c}"`).join(', ')} gone` +
    `${added.length > 0 ? `, ${added.map((c) => `"${c}"`).join(', ')} new` : ''}; nothing was queued or removed. ` +
    `If the change is meant, check the job's templates and run \`tokenhot-batch schedule sync\` to accept the new header`
  );
}
