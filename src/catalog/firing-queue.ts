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

/** What queuing needs of a firing's parts. */
export interface FiringQueueDeps {
  images: Queue<ImageJobData>;
  batches: BatchState;
  catalogs: CatalogState;
}

const CHUNK = 500;

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
    rows.forEach((row, index) => {
      // Queued with this very content by an earlier firing and not finished yet.
      if (known.pending[index] === row.contentHash) run.stillQueued += 1;
      else if (definition.mode === 'incremental' && known.done[index] === row.contentHash) run.unchanged += 1;
      else wanted.push(row);
    });
    await enqueueCatalogRows(deps.images, deps.batches, this.batch, wanted, this.jobOptions, definition.name, this.firing);
    await deps.catalogs.markPending(definition.name, new Map(wanted.map((row) => [row.id, row.contentHash!])));
    run.enqueued += wanted.length;
  }
}
