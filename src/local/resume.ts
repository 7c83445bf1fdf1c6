/** Resume: a settled row's outcome is already on disk and in the ledger, so a re-run skips it. */
import pLimit from 'p-limit';
import { planRow, type RowContext, type Sidecar } from '../run/generate.js';
import type { BatchRow } from '../core/types.js';
import type { LocalRunOptions } from './run-options.js';
import type { RunSummary } from './run-summary.js';

/** The rows still to run, by their sidecars; the ones settled earlier are counted in `summary`. */
export async function rowsToRun(rows: BatchRow[], summary: RunSummary, options: LocalRunOptions, store: RowContext['store']): Promise<BatchRow[]> {
  const todo: BatchRow[] = [];
  const checkLimit = pLimit(32);
  const states = await Promise.all(rows.map((row) => checkLimit(() => store.readSidecar<Sidecar>(row.batch, row.id))));
  rows.forEach((row, index) => {
    const sidecar = states[index];
    const plan = planRow(row, sidecar, options);
    if (plan === 'run') todo.push(row);
    else if (plan === 'failed') summary.alreadyFailed.push({ id: row.id, line: row.line, reason: sidecar?.reason ?? 'failed' });
    else {
      summary.alreadyDone += 1;
      if (plan === 'doneChanged') summary.changedSinceDone.push({ id: row.id, line: row.line, reason: 'prompt or parameters changed since it was made' });
    }
  });
  return todo;
}
