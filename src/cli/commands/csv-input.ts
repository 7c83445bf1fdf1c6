/**
 * How `run`, `enqueue` and `estimate` take a CSV, from their flags: the batch it runs as, the
 * delimiter, and what becomes of a model id this version does not know (a warning once per id,
 * with the nearest known id; refused with `--strict`).
 */
import { basename, extname } from 'node:path';
import type { Config } from '../../core/config.js';
import { UsageError } from '../../core/errors.js';
import { findModel, unknownModelReason } from '../../providers/models.js';
import type { CsvReading } from '../../rows/csv.js';
import { checkBatchName } from '../../output/storage.js';
import { PhotoCache, photoCacheDir } from '../../rows/photo-cache.js';
import { localDirOf } from '../../output/location.js';

export interface CsvInputFlags {
  delimiter?: string;
  strict?: boolean;
}

export interface CsvInput {
  reading: CsvReading;
  /** Unknown model ids met so far: the default's at once, the file's as it is read. */
  unknownModels: string[];
}

/** The batch a file runs as: `--batch`, else the file's name without its extension. */
export function batchNameFor(csvPath: string, flag: string | undefined): string {
  const batch = flag ?? basename(csvPath, extname(csvPath)).replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  const problem = checkBatchName(batch);
  if (problem) throw new UsageError(`${problem}; choose one with --batch`);
  return batch;
}

/** `--delimiter`: one character (not a quote or a line break), or `tab` / `\t`. */
export function parseDelimiter(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value === 'tab' || value === '\\t' || value === '\t') return '\t';
  if (value.length !== 1 || value === '"' || value === '\n' || value === '\r') {
    throw new UsageError(`--delimiter: "${value}" is not a delimiter (one character, like , or ';', or tab)`);
  }
  return value;
}

/**
 * The reading options, after checking the default model (`--model`, TOKENHOT_MODEL) once: an
 * unknown one is one warning, or with `--strict` one error, never a line per row that takes it.
 * `warn` gets each warning when it is found.
 */
/** `photos`: the process's photo cache when it has one (an in-process run's pipeline), so a photo is asked for once. */
export function csvInput(flags: CsvInputFlags, config: Pick<Config, 'model' | 'modelSource' | 'outDir' | 'apiKey'>, warn: (message: string) => void, photos?: PhotoCache): CsvInput {
  const unknownModels: string[] = [];
  const delimiter = parseDelimiter(flags.delimiter);
  if (!findModel(config.model)) {
    const reason = `${config.modelSource}: ${unknownModelReason(config.model)}`;
    if (flags.strict) throw new UsageError(`${reason}; --strict refuses it`);
    unknownModels.push(config.model);
    warn(`${reason}; rows that name no model are sent with it as written`);
  }
  const reading: CsvReading = {
    ...(delimiter !== undefined ? { delimiter } : {}),
    // Photos named by URL are fetched (once) and checked before any row is sent.
    photos: photos ?? new PhotoCache(photoCacheDir(localDirOf(config.outDir)), config.apiKey ? { apiKey: config.apiKey } : {}),
    unknownModel: flags.strict
      ? 'refuse'
      : (model, where) => {
          // Already said of the default model: once is enough.
          if (unknownModels.includes(model)) return;
          unknownModels.push(model);
          warn(`${where.file}:${where.line}: model: ${unknownModelReason(model)}; its rows are sent as written (said once per model; --strict refuses them)`);
        },
  };
  return { reading, unknownModels };
}

/** A warning on stderr, where progress and logs go, so stdout stays the summary or report. */
export function warnOnStderr(message: string): void {
  process.stderr.write(`warning: ${message}\n`);
}
