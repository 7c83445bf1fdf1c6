/**
 * A product feed and a job's shot list as a row source: every product's every shot is a row
 * (catalog/shots.ts), read whole before the first is handed on, so a bad mapping stops the run
 * before anything is sent.
 */
import { formatProblem } from '../rows/problems.js';
import type { RowRead } from '../rows/problems.js';
import type { ReadRowsOptions } from '../rows/reading-options.js';
import type { RowSource } from '../rows/row-source.js';
import { readShotRows, type FeedJob } from './shots.js';

/** Rows handed on at a time, as a CSV's are. */
const CHUNK = 500;

/** `warn`: products kept but not as asked (more photos than a model takes), one line each. */
export function feedSource(job: FeedJob, warn?: (message: string) => void): RowSource {
  let columns: string[] | undefined;
  return {
    path: job.feed,
    columns: () => columns,
    async *read(options: ReadRowsOptions): AsyncGenerator<RowRead[]> {
      const shots = await readShotRows(job, {
        defaults: options.defaults,
        strictModels: options.unknownModel === 'refuse',
        ...(options.budgetPrices ? { budgetPrices: options.budgetPrices } : {}),
      });
      columns = shots.table.columns;
      for (const warning of shots.warnings) warn?.(formatProblem(warning));
      // A filter that lets nothing through is more likely a typo than a wish for an empty run.
      if (shots.products.length === 0 && shots.excluded.where > 0) warn?.(`${job.definitionFile}: where: matched none of the feed's ${shots.excluded.where + shots.excluded.status} products`);
      const unknown = options.unknownModel;
      if (typeof unknown === 'function') for (const model of shots.unknownModels) unknown(model, { file: job.definitionFile, line: 0 });
      const reads: RowRead[] = [...shots.problems.map((problem) => ({ problem })), ...shots.rows.map((row) => ({ row }))];
      for (let at = 0; at < reads.length; at += CHUNK) yield reads.slice(at, at + CHUNK);
    },
  };
}
