/**
 * What `run`, `enqueue` and `estimate` read: a prompt CSV named on the command line, or a job
 * definition (`--job jobs/shopify-nightly.yaml`): its CSV, or its feed made into rows by its shot
 * list, with the job's defaults, budget and name as the batch (flags win over the job's).
 */
import { formatDefinitionProblem, loadDefinition, type CatalogDefinition } from '../../catalog/definition.js';
import { feedSource } from '../../catalog/feed-source.js';
import type { Config } from '../../core/config.js';
import { UsageError } from '../../core/errors.js';
import { csvSource, type RowSource } from '../../rows/row-source.js';
import { absoluteOutput } from '../../output/location.js';
import { batchNameFor } from './csv-input.js';

export interface JobInputFlags {
  job?: string;
  /** `--out`: wins over the job's `out:`. */
  out?: string;
  batch?: string;
  budgetUsd?: string;
  model?: string;
  aspectRatio?: string;
  imageSize?: string;
}

export interface RowInput {
  /** The file read (the CSV, or the job's feed), for messages. */
  path: string;
  source: RowSource;
  batch: string;
  /** `--budget-usd`, else the job's `budgetUsd`. */
  budgetUsd?: string;
  /** The configuration with the job's defaults for rows that name no model, ratio or size, and its `out:`. */
  config: Config;
  job?: CatalogDefinition;
  /**
   * Where the workers write this batch when it is named for it (`--out`, else the job's `out:`):
   * an absolute folder or a bucket URL, carried by each queued row. Unset: each worker's own output.
   */
  out?: string;
}

export async function rowInput(csv: string | undefined, flags: JobInputFlags, config: Config, warn: (message: string) => void): Promise<RowInput> {
  if ((csv === undefined) === (flags.job === undefined)) throw new UsageError(csv === undefined ? 'give a CSV file, or a job definition with --job FILE' : `give a CSV file or --job, not both (${csv}, --job ${flags.job})`);
  if (csv !== undefined) {
    return { path: csv, source: csvSource(csv), batch: batchNameFor(csv, flags.batch), ...(flags.budgetUsd !== undefined ? { budgetUsd: flags.budgetUsd } : {}), config, ...namedOutput(flags.out) };
  }
  const job = await loadDefinition(flags.job!);
  if ('reason' in job) throw new UsageError(formatDefinitionProblem(job));
  const defaults = job.defaults;
  const budgetUsd = flags.budgetUsd ?? (job.budgetUsd !== undefined ? String(job.budgetUsd) : undefined);
  // The job's output beats TOKENHOT_OUT_DIR (the job says where its batches belong); --out beats both.
  const outDir = job.out !== undefined && flags.out === undefined ? job.out : config.outDir;
  return {
    path: job.csv,
    source: job.feed ? feedSource(job.feed, warn) : csvSource(job.csv),
    batch: batchNameFor(job.name, flags.batch),
    ...(budgetUsd !== undefined ? { budgetUsd } : {}),
    config: {
      ...config,
      outDir,
      ...(defaults.model && flags.model === undefined ? { model: defaults.model, modelSource: `${job.file}: defaults.model` } : {}),
      ...(defaults.aspectRatio && flags.aspectRatio === undefined ? { aspectRatio: defaults.aspectRatio } : {}),
      ...(defaults.imageSize && flags.imageSize === undefined ? { imageSize: defaults.imageSize } : {}),
    },
    job,
    ...namedOutput(flags.out ?? job.out),
  };
}

/** The output named for a batch, as every worker reads it (TOKENHOT_OUT_DIR is each worker's own, not the batch's). */
function namedOutput(out: string | undefined): { out?: string } {
  return out === undefined ? {} : { out: absoluteOutput(out) };
}
