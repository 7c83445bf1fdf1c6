/** What a local run is asked to do, and the events it reports while it runs. */
import type { RowOutcome } from '../run/generate.js';
import type { Progress } from '../run/progress.js';
import type { RetryPolicy } from '../run/retry-policy.js';
import type { CsvReading, RowDefaults } from '../rows/csv.js';
import type { BatchRow } from '../core/types.js';
import type { RowSource } from '../rows/row-source.js';

export interface LocalRunOptions {
  csvPath: string;
  /** Where the rows come from when not the CSV at `csvPath` (a feed job's shots). */
  source?: RowSource;
  batch: string;
  defaults: RowDefaults;
  concurrency: number;
  retry: RetryPolicy;
  /** Refuse the whole file when any row is bad, before a single request. */
  strict?: boolean;
  /** Run rows again that failed for good in an earlier run (they are billed again). */
  retryFailed?: boolean;
  /** Make again the finished rows whose prompt or parameters changed in the file since. */
  redoChanged?: boolean;
  /** The delimiter and what to do with unknown model ids (see `CsvReading`). */
  reading?: CsvReading;
  /** Stops taking new rows when aborted; calls in flight finish. */
  stopSignal?: AbortSignal;
  /** Aborts calls in flight (a second Ctrl-C). */
  abortSignal?: AbortSignal;
  /** A known quota in requests per minute; without it the pace is learned from 429s. */
  rpm?: number;
  /** Cap on the batch's spend, all runs together; no new call starts once it is reached. */
  budgetPico?: bigint;
  /** What the batch cost in earlier runs (from the ledger), counted against the cap. */
  spentBeforePico?: bigint;
  progress?: (total: number) => Progress;
  onEvent?: (event: RunEvent) => void;
}

export type RunEvent =
  | { type: 'retry'; row: BatchRow; attempt: number; delayMs: number; reason: string }
  | { type: 'rateLimited'; row: BatchRow; delayMs: number; reason: string }
  | { type: 'settled'; row: BatchRow; outcome: RowOutcome }
  /** A row not started: the batch reached its budget (`spendPico` of `budgetPico` spent, all runs). */
  | { type: 'overBudget'; row: BatchRow; spendPico: bigint; budgetPico: bigint };
