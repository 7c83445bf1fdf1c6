/** What a local run did with each row of the file, as it reports it at the end. */
import type { RowProblem } from '../rows/csv.js';
import type { LocalRunOptions } from './run-options.js';

export interface FailedRow {
  id: string;
  /** CSV line, when known. */
  line?: number;
  reason: string;
}

export interface RunSummary {
  batch: string;
  /** Valid rows in the file. */
  rows: number;
  rejected: RowProblem[];
  alreadyDone: number;
  /** Rows that failed for good in an earlier run and were not tried again. */
  alreadyFailed: FailedRow[];
  /** Finished rows whose prompt or parameters in the file differ from what was made (not redone). */
  changedSinceDone: FailedRow[];
  done: number;
  failed: FailedRow[];
  /** Rows left untouched because the run stopped (fatal error, quota, Ctrl-C). */
  notRun: number;
  /** Rows not started because the batch reached its budget; they run when the cap is raised. */
  overBudget: number;
  budgetPico?: bigint;
  /** Spend of the batch over all runs, when a budget is set. */
  batchSpendPico?: bigint;
  stopReason?: string;
  spendPico: bigint;
  /** Billed answers of models with no price (not in spendPico). */
  unpriced?: number;
  elapsedMs: number;
}

/** The summary of a run before any row has been looked at. */
export function emptySummary(options: LocalRunOptions, rows: number, rejected: RowProblem[]): RunSummary {
  return {
    batch: options.batch,
    rows,
    rejected,
    alreadyDone: 0,
    alreadyFailed: [],
    changedSinceDone: [],
    done: 0,
    failed: [],
    notRun: 0,
    overBudget: 0,
    budgetPico: options.budgetPico,
    spendPico: 0n,
    elapsedMs: 0,
  };
}
