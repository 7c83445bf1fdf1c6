/**
 * A catalog job with `regenerate: rejected | guided`: the rows whose newest image a person
 * rejected in review (output/reviews.ts) are made again by the next firing, even though their
 * content did not change; `guided` adds the reviewer's note to the prompt ("Avoid: ...").
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { appendReview, batchDecisions } from '../output/reviews.js';
import { sidecarRowId } from '../output/storage.js';

export interface RejectedRow {
  /** The batch of the rejected image. */
  batch: string;
  note?: string;
}

/**
 * The rows of a job whose newest image (in the newest of `batches` holding a sidecar of the row)
 * is rejected. Batches are given newest first; an image made since a rejection is not rejected.
 */
export async function rejectedRowsOf(outDir: string, batches: string[]): Promise<Map<string, RejectedRow>> {
  const rejected = new Map<string, RejectedRow>();
  const seen = new Set<string>();
  for (const batch of batches) {
    const rows = await rowsWithImages(join(outDir, batch));
    if (rows.length === 0) continue;
    const decisions = await batchDecisions(outDir, batch);
    for (const rowId of rows) {
      if (seen.has(rowId)) continue;
      seen.add(rowId);
      const decision = decisions.get(rowId);
      if (decision?.decision === 'rejected') rejected.set(rowId, { batch, ...(decision.note ? { note: decision.note } : {}) });
    }
  }
  return rejected;
}

/** The row is being made again: its rejection is settled (the next firing does not take it again). */
export async function markRegenerated(outDir: string, row: { rowId: string } & RejectedRow, job: string): Promise<void> {
  await appendReview(outDir, row.batch, { rowId: row.rowId, decision: 'regenerated', who: `catalog job ${job}` });
}

/** Row ids with a sidecar in a batch folder (not the manifest, not kept versions). */
async function rowsWithImages(folder: string): Promise<string[]> {
  const names = await readdir(folder).catch(() => [] as string[]);
  return names.map(sidecarRowId).filter((rowId): rowId is string => rowId !== undefined);
}
