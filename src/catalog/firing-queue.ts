/**
 * What a firing queues of the rows it reads: each row's content hash decides (incremental: rows
 * new or changed since their last finished image; full: every row), except rows an earlier
 * firing queued with the same content and that are not finished yet. Rows go in chunks.
 */
import type { JobsOptions } from 'bullmq';
import { enqueueCatalogRows } from '../queue/enqueue.js';
import { rowContentHash, type FileHashes } from '../rows/content-hash.js';
import type { RowProblem, RowRead } from '../rows/problems.js';
import type { BatchRow } from '../core/types.js';
import type { CatalogDefinition } from './definition.js';
import type { Queue } from 'bullmq';
import type { BatchState } from '../queue/batch-state.js';
import type { ImageJobData } from '../queue/queue.js';
import type { CatalogState } from './state.js';
import type { CatalogRun } from './state.js';
import { markRegenerated, type RejectedRow } from './rejected-rows.js';
import { guidedPrompt } from '../output/reviews.js';

/** What queuing needs of a firing's parts. */
export interface FiringQueueDeps {
  images: Queue<ImageJobData>;
  batches: BatchState;
  catalogs: CatalogState;
}

const CHUNK = 500;

/** Rows rejected in review that this firing makes again (`regenerate:`), and whether with their notes. */
export interface Regenerating {
  rows: Map<string, RejectedRow>;
  guided: boolean;
  outDir: string;
}

export class FiringQueue {
  readonly rejected: RowProblem[] = [];
  private chunk: BatchRow[] = [];

  constructor(
    private readonly definition: CatalogDefinition,
    private readonly batch: string,
    /** Names this firing's jobs. */
    private readonly firing: string,
    private readonly deps: FiringQueueDeps,
    private readonly files: FileHashes,
    private readonly jobOptions: JobsOptions,
    private readonly run: CatalogRun,
    private readonly regenerating?: Regenerating,
  ) {}

  async take(read: RowRead): Promise<void> {
    if ('problem' in read) {
      this.rejected.push(read.problem);
      return;
    }
    this.chunk.push({ ...read.row, batch: this.batch });
    if (this.chunk.length >= CHUNK) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.chunk.length === 0) return;
    const rows = this.chunk;
    this.chunk = [];
    const { definition, deps, run } = this;
    for (const row of rows) row.contentHash = await rowContentHash(row, this.files);
    const known = await deps.catalogs.known(definition.name, rows.map((row) => row.id));
    const wanted: BatchRow[] = [];
    const again: BatchRow[] = [];
    rows.forEach((row, index) => {
      // Queued with this very content by an earlier firing and not finished yet.
      if (known.pending[index] === row.contentHash) run.stillQueued += 1;
      else if (definition.mode === 'incremental' && known.done[index] === row.contentHash) {
        if (this.regenerating?.rows.has(row.id)) again.push(row);
        else run.unchanged += 1;
      } else wanted.push(row);
    });
    wanted.push(...this.remake(again));
    await enqueueCatalogRows(deps.images, deps.batches, this.batch, wanted, this.jobOptions, definition.name, this.firing, definition.out);
    for (const row of again) await markRegenerated(this.regenerating!.outDir, { rowId: row.id, ...this.regenerating!.rows.get(row.id)! }, definition.name);
    await deps.catalogs.markPending(definition.name, new Map(wanted.map((row) => [row.id, row.contentHash!])));
    run.enqueued += wanted.length;
    run.regenerated = (run.regenerated ?? 0) + again.length;
  }

  /** Unchanged rows rejected in review, as they go again: the same content hash, the note in the prompt when guided. */
  private remake(rows: BatchRow[]): BatchRow[] {
    if (!this.regenerating || rows.length === 0) return [];
    const { rows: rejected, guided } = this.regenerating;
    return rows.map((row) => ({ ...row, prompt: guidedPrompt(row.prompt, rejected.get(row.id)?.note, guided) }));
  }
}
