/**
 * `tokenhot-batch regenerate --batch NAME --rejected [--guided]`: the rejected rows of a batch made
 * again in-process, through the same path as `run` (ledger under the same batch and tags,
 * sidecars, manifest).
 *
 * Before a row is made again its image(s) and sidecar are kept as `<id>.v1.<ext>` / `<id>.v1.json`
 * (v2, ... when v1 exists) and a `regenerated` review line is appended: the old decisions stay in
 * the history, the new image is unreviewed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config, type ConfigFlags } from '../../core/config.js';
import { UsageError } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import { createPipeline } from '../../run/pipeline.js';
import { csvSource } from '../../rows/row-source.js';
import { readReviewRows, type ReviewRow } from '../../views/review/rows.js';
import { keepAsVersion, restoreIfNotMade } from '../../views/review/versions.js';
import { runFileInProcess } from './run.js';
import { existingBatchFolder, guidedPrompt, reviewableOutput } from '../../output/reviews.js';

export interface RegenerateFlags extends ConfigFlags {
  batch?: string;
  rejected?: boolean;
  guided?: boolean;
  plain?: boolean;
}

export async function regenerateCommand(flags: RegenerateFlags): Promise<number> {
  if (!flags.batch) throw new UsageError('--batch: name the batch whose rejected rows to make again');
  if (!flags.rejected) throw new UsageError('--rejected: say which rows to make again (only the rejected ones so far)');
  const config = loadConfig(flags);
  const batch = flags.batch;
  existingBatchFolder(reviewableOutput(config.outDir), batch);
  const rejected = (await readReviewRows(config.outDir, batch)).filter((row) => row.review === 'rejected' && row.status === 'done');
  if (rejected.length === 0) {
    process.stdout.write(`batch ${batch}: no rejected rows to make again\n`);
    return 0;
  }
  const temp = await mkdtemp(join(tmpdir(), 'thb-regenerate-'));
  try {
    const csv = join(temp, `${batch.replace(/[\\/]/g, '_')}-regenerate.csv`);
    await writeFile(csv, rowsCsv(rejected, Boolean(flags.guided)), 'utf8');
    const versions = new Map<ReviewRow, number>();
    try {
      for (const row of rejected) {
        const version = await keepAsVersion(config.outDir, batch, row);
        versions.set(row, version);
        process.stderr.write(`${row.id}: kept as ${row.id}.v${version}.*\n`);
      }
      return await runRows(config, batch, csv, flags);
    } finally {
      for (const [row, version] of versions) {
        if (await restoreIfNotMade(config.outDir, batch, row, version)) process.stderr.write(`${row.id}: not made again; ${row.id}.v${version} put back, still rejected\n`);
      }
    }
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

/** The rows through `run`'s in-process path, whatever REDIS_URL says: they are few and picked by hand. */
async function runRows(config: Config, batch: string, csv: string, flags: RegenerateFlags): Promise<number> {
  const pipeline = await createPipeline(config);
  try {
    const input = { path: csv, source: csvSource(csv), batch, config };
    return (await runFileInProcess(input, { plain: flags.plain }, pipeline, createLogger('warn', process.env.TOKENHOT_API_KEY))).exitCode;
  } finally {
    await pipeline.close();
  }
}

/** A prompt CSV of the rows as their sidecars made them (metadata as extra columns). */
function rowsCsv(rows: ReviewRow[], guided: boolean): string {
  const metadataKeys = [...new Set(rows.flatMap((row) => Object.keys(row.sidecar.metadata ?? {})))].filter((key) => !KNOWN.has(key));
  const header = [...COLUMNS, ...metadataKeys];
  const lines = rows.map((row) => {
    const made = row.sidecar.parameters;
    return [
      row.id,
      guidedPrompt(row.prompt, row.decision?.note, guided),
      made.model,
      made.aspectRatio ?? '',
      made.imageSize ?? '',
      made.size ?? '',
      made.quality ?? '',
      (made.referenceImages ?? []).join(';'),
      (row.sidecar.tags ?? []).join(';'),
      ...metadataKeys.map((key) => row.sidecar.metadata?.[key] ?? ''),
    ];
  });
  return [header, ...lines].map((cells) => cells.map(quoted).join(',')).join('\n') + '\n';
}

/** The columns a row's request fills; metadata keys of these names are not written twice. */
const COLUMNS = ['id', 'prompt', 'model', 'aspect_ratio', 'image_size', 'size', 'quality', 'reference_images', 'tags'];
const KNOWN = new Set(COLUMNS);

function quoted(cell: string): string {
  return `"${cell.replace(/"/g, '""')}"`;
}
