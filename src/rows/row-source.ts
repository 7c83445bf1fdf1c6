/**
 * Where a run's rows come from: a prompt CSV, or a product feed made into rows by a job's shot
 * list (catalog/feed-source.ts). Runners, the producer and estimates read either the same way.
 */
import { readRowBatches } from './csv.js';
import type { ReadRowsOptions } from './reading-options.js';
import type { RowRead } from './problems.js';

export interface RowSource {
  /** The file, as the user named it: messages and the batch's record name it. */
  path: string;
  /** The rows in chunks, each checked; a bad one reads as its problems. */
  read(options: ReadRowsOptions): AsyncIterable<RowRead[]>;
  /** A feed's header as last read (a catalog firing compares it with the one before). */
  columns?(): string[] | undefined;
}

export function csvSource(path: string): RowSource {
  return { path, read: (options) => readRowBatches(path, options) };
}

/** Every row of a source, one by one. */
export async function* readSourceRows(source: RowSource, options: ReadRowsOptions): AsyncGenerator<RowRead> {
  for await (const reads of source.read(options)) yield* reads;
}
