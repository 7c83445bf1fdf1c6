/**
 * Rows an earlier firing of a catalog job parked over budget are taken over by the next firing:
 * their parked jobs are removed from the earlier batch and the rows are queued again under the
 * new firing's batch and budget, instead of waiting for ever in an old batch that no firing
 * will raise the budget of.
 */
import type { Queue } from 'bullmq';
import type { BatchState } from '../queue/batch-state.js';
import type { ImageJobData } from '../queue/queue.js';
import type { CatalogState } from './state.js';

export interface TakenOver {
  /** Row ids whose parked job was removed: the firing queues them again. */
  rowIds: Set<string>;
  /** Batches they came from. */
  fromBatches: string[];
}

export async function takeOverParkedRows(catalog: string, batch: string, deps: { images: Queue<ImageJobData>; batches: BatchState; catalogs: CatalogState }): Promise<TakenOver> {
  const earlier = (await deps.catalogs.batches(catalog)).filter((name) => name !== batch);
  const taken: TakenOver = { rowIds: new Set(), fromBatches: [] };
  const parked = await deps.batches.parkedIn(earlier);
  for (const [index, from] of earlier.entries()) {
    if (parked[index] === 0) continue;
    const rowIds: string[] = [];
    for (const jobId of await deps.batches.takeOverBudget(from)) {
      const rowId = await removeParkedJob(deps.images, jobId);
      if (rowId !== undefined) rowIds.push(rowId);
    }
    if (rowIds.length === 0) continue;
    await deps.batches.handOver(from, rowIds, batch);
    for (const rowId of rowIds) {
      await deps.catalogs.clearPending(catalog, rowId);
      taken.rowIds.add(rowId);
    }
    taken.fromBatches.push(from);
  }
  return taken;
}

/**
 * Removes a parked job and says whose row it was. A job that is running by now (set going
 * since it was parked) is left to finish where it is: removing a locked job throws.
 */
async function removeParkedJob(images: Queue<ImageJobData>, jobId: string): Promise<string | undefined> {
  const job = await images.getJob(jobId);
  if (!job || !((await job.isDelayed()) || (await job.isWaiting()))) return undefined;
  try {
    await job.remove();
    return job.data.row.id;
  } catch {
    return undefined;
  }
}
