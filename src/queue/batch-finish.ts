/**
 * The end of a batch in queue mode: the worker that settles a batch's last row writes its
 * manifest (and, for a job's batch, the job's `latest/` view). No worker knows that it
 * holds the last row, so each settled row asks the batch's counts (one round trip); only when
 * nothing is left is anything read from disk. Two workers settling the last rows at once may
 * both write: each file is written whole and renamed into place, so the last one wins. The
 * batch's `batch.finished` webhook is sent once, by the worker that claims it in Redis.
 */
import type { Logger } from '../core/log.js';
import { updateLatest } from '../output/latest.js';
import { writeManifest, type ManifestSummary } from '../output/manifest.js';
import { announceOnce } from '../notify/batch-notices.js';
import { newEvent } from '../notify/events.js';
import type { OutputStore } from '../output/storage.js';
import { picoToUsd } from '../cost/pricing.js';
import type { BatchState } from './batch-state.js';
import type { ImageJobData } from './queue.js';
import type { Deliver } from '../core/types.js';

export interface BatchFinishParts {
  batches: BatchState;
  /** The batch's output; none when the settling row's output could not be opened. */
  store: OutputStore | undefined;
  log: Logger;
}

/**
 * Called after a row of `data` was marked done or failed for good. Never throws: the manifest
 * is made from what is on disk, so a failed one is made by the batch's next settled row or the
 * next run, and the row itself stays settled.
 */
export async function finishBatchIfSettled(parts: BatchFinishParts, data: ImageJobData): Promise<void> {
  const { batch } = data.row;
  try {
    if (!(await nothingLeft(parts.batches, batch))) return;
    if (!parts.store) {
      // No manifest can be written where the batch goes, but the batch is over all the same: a
      // receiver waiting for it hears so, with what Redis counted as spent.
      await announceFinished(parts.batches, batch, undefined, 'all', parts.log);
      return;
    }
    const meta = await parts.batches.meta(batch);
    const deliver = { deliver: meta.deliver === 'approved' ? 'approved' : 'all' } as const;
    const manifest = await writeManifest(parts.store, batch, deliver);
    for (const warning of manifest.warnings) parts.log.warn({ batch }, warning);
    parts.log.info({ batch, rows: manifest.rows, done: manifest.done, failed: manifest.failed, costUsd: manifest.costUsd }, `batch ${batch} settled: manifest written`);
    await announceFinished(parts.batches, batch, manifest, deliver.deliver, parts.log);
    // A catalog firing's job, or the job a batch was enqueued from (`--job`).
    const job = data.catalog?.name ?? meta.job;
    if (!job) return;
    const latest = await updateLatest(parts.store, job, batch, { ...deliver, entries: manifest.entries });
    parts.log.info({ batch, job: latest.job, updated: latest.updated, copied: latest.copied, keptNewer: latest.keptNewer }, `latest/${latest.job} updated`);
  } catch (error) {
    parts.log.warn({ batch, err: (error as Error).message }, 'manifest of the batch not written');
  }
}

/**
 * `batch.finished` to the batch's URLs, once (a failure is logged: the manifest stands). Without
 * a manifest (the output could not be opened) the cost is the batch's spend counted in Redis.
 */
async function announceFinished(batches: BatchState, batch: string, manifest: ManifestSummary | undefined, deliver: Deliver, log: Logger): Promise<void> {
  try {
    const event = async () => {
      const counts = await batches.counts(batch);
      const costUsd = manifest ? manifest.costUsd : picoToUsd(counts.spendPico);
      return newEvent('batch.finished', { batch, rows: counts.rows, done: counts.done, failed: counts.failed, overBudget: counts.overBudget, costUsd, manifest: manifest?.csvPath ?? null, deliver });
    };
    if (await announceOnce(batches, batch, 'finished', event)) log.info({ batch }, 'batch.finished webhook queued');
  } catch (error) {
    log.warn({ batch, err: (error as Error).message }, 'batch.finished webhook not queued');
  }
}

/**
 * Every row queued in the batch is done, failed for good or parked over budget: then no job of
 * the batch is waiting or active but the caller's own (status.ts counts waiting as the rest).
 * Parked rows are made after a budget raise, and their settling writes the manifest again.
 */
async function nothingLeft(batches: BatchState, batch: string): Promise<boolean> {
  const counts = await batches.counts(batch);
  return counts.rows > 0 && counts.done + counts.failed + counts.overBudget >= counts.rows;
}
