/**
 * Prompt CSV → validated rows. The file is streamed (catalogs run to 100k rows), every bad row is
 * reported with its line and column so a user can fix the file in one pass, and only a file that
 * cannot be read as a CSV at all stops the reading.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { pipeline } from 'node:stream';
import { CsvError, parse, type Parser } from 'csv-parse';
import { detectDelimiter, type Delimiter } from './delimiter.js';
import { readHeader, type Header } from './header.js';
import { CsvFileError, formatProblem, type RowProblem, type RowRead } from './problems.js';
import type { CsvReading, ReadRowsOptions, RowDefaults } from './reading-options.js';
import { RecordChecks } from './record-checks.js';
import { Utf8Guard } from './utf8-guard.js';
import { UsageError } from '../core/errors.js';
import { MAX_GEMINI_REFERENCE_BYTES } from '../providers/gemini/models.js';
import type { PriceTable } from '../cost/pricing.js';
import { csvParseOptions, MAX_RECORD_BYTES } from './parse-options.js';

// The reader's public surface stays here; its parts are in the modules named above.
export { CsvFileError, formatProblem, type RowProblem, type RowRead } from './problems.js';
export type { CsvReading, ReadRowsOptions, RowDefaults } from './reading-options.js';
export { delimiterName, delimiterOfHeader } from './delimiter.js';
export { KNOWN_COLUMNS } from './header.js';

/** The checks for a batch's rows: with a budget, only rows whose model has a price can run. */
export function rowChecks(defaults: RowDefaults, budgetPico: bigint | undefined, prices: PriceTable | undefined, reading: CsvReading = {}): ReadRowsOptions {
  return budgetPico === undefined || !prices ? { ...reading, defaults } : { ...reading, defaults, budgetPrices: prices };
}

/**
 * Rows rejected, as opposed to problems found: a row with three bad cells is one rejected row
 * with three reasons. A record's problems come one after another, so a change of line is a row.
 */
export function rejectedRowCount(problems: readonly RowProblem[]): number {
  let count = 0;
  let last: RowProblem | undefined;
  for (const problem of problems) {
    if (!last || problem.line !== last.line || problem.file !== last.file) count += 1;
    last = problem;
  }
  return count;
}

/** The file refused as a whole (`--strict`): the bad rows' count and the first problems. */
export function strictRejection(file: string, problems: readonly RowProblem[]): UsageError {
  const shown = problems.slice(0, 20).map(formatProblem).join('\n  ');
  const more = problems.length > 20 ? `\n  ... and ${problems.length - 20} more` : '';
  return new UsageError(`${file} rejected (--strict): ${rejectedRowCount(problems)} bad row(s)\n  ${shown}${more}`);
}

/** Gemini's limit on a row's reference images together (see providers/gemini/models.ts). */
export const MAX_REFERENCE_BYTES = MAX_GEMINI_REFERENCE_BYTES;

export { MAX_RECORD_BYTES };

// ---------------------------------------------------------------------------------------------
// Records

interface RawRecord {
  record: string[];
  raw: string;
}

function isRawRecord(value: unknown): value is RawRecord {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as { record?: unknown }).record) &&
    typeof (value as { raw?: unknown }).raw === 'string'
  );
}

/**
 * Line breaks in a record's raw text, its own terminator included. csv-parse's `info.lines`
 * counts a CRLF inside quotes as two lines, so lines are counted here instead.
 */
function countLineBreaks(raw: string): number {
  // The usual record: one line, ended by LF (or by nothing at the end of the file).
  const lf = raw.indexOf('\n');
  if (lf === raw.length - 1 || lf === -1) {
    if (raw.indexOf('\r') === -1) return lf === -1 ? 0 : 1;
  }
  let count = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x0d) {
      count++;
      if (raw.charCodeAt(i + 1) === 0x0a) i++;
    } else if (c === 0x0a) {
      count++;
    }
  }
  return count;
}

function isBlankRecord(record: string[]): boolean {
  return record.every((field) => field.trim() === '');
}

/**
 * Streams the file: yields a Row or problems per record, in file order. A record with problems
 * yields one `{ problem }` per problem found (all of them, so one pass fixes the file) and no Row.
 * Blank records (empty lines, or only empty cells) are skipped. Throws CsvFileError when the file
 * as a whole is unusable, possibly after earlier records were yielded.
 */
export async function* readRows(csvPath: string, options: ReadRowsOptions): AsyncGenerator<RowRead> {
  for await (const reads of readRowBatches(csvPath, options)) yield* reads;
}

/**
 * `readRows` in batches: the same reads in the same order, handed over as many at a time as the
 * parser has ready (up to a few hundred). For callers that go through 100k-row files, where an
 * async step per row costs more than checking the row.
 */
export async function* readRowBatches(csvPath: string, options: ReadRowsOptions): AsyncGenerator<RowRead[]> {
  const defaults = options.defaults;
  if (!defaults || typeof defaults.model !== 'string' || defaults.model.trim() === '') {
    throw new TypeError('readRows: options.defaults.model is required');
  }
  const file = csvPath;
  const folder = dirname(resolve(csvPath));
  await checkIsFile(file);
  const delimiter: Delimiter = { value: options.delimiter ?? (await detectDelimiter(csvPath)), given: options.delimiter !== undefined };
  const parser = openParser(csvPath, delimiter.value);
  const checks = new RecordChecks(file, folder, options, delimiter.value);
  let header: Header | undefined;
  let headerLine = 1;
  let nextLine = 1;
  let recordNumber = 0;

  try {
    for await (const first of parser as AsyncIterable<unknown>) {
      const batch: RowRead[] = [];
      // The records the parser already holds are taken at once, without an async step each. A
      // parser destroyed meanwhile (the file turned out bad while reference images were being
      // looked at) gives nothing more, as its iterator would: the error comes next.
      for (let chunk: unknown = first; chunk !== null; chunk = parser.destroyed ? null : (parser.read() as unknown)) {
        if (!isRawRecord(chunk)) continue;
        const line = nextLine;
        nextLine += countLineBreaks(chunk.raw);
        const record = chunk.record;
        if (isBlankRecord(record)) continue;
        if (!header) {
          header = readHeader(file, line, record, delimiter);
          headerLine = line;
          continue;
        }
        recordNumber++;
        // Synchronous unless the row names reference images (their files are looked at).
        const checked = checks.check(record, line, recordNumber, header, headerLine);
        for (const read of checked instanceof Promise ? await checked : checked) batch.push(read);
      }
      if (batch.length > 0) yield batch;
    }
  } catch (error) {
    throw asFileError(error, file, nextLine) ?? error;
  }
  if (!header) throw new CsvFileError(file, 'is empty; a prompt CSV starts with a header row naming a "prompt" column');
}

/** Fails early and plainly on the common mistakes (no such file, a folder), before any stream is made. */
async function checkIsFile(file: string): Promise<void> {
  try {
    const info = await stat(file);
    if (info.isDirectory()) throw new CsvFileError(file, 'is a folder, not a CSV file');
  } catch (error) {
    if (error instanceof CsvFileError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new CsvFileError(file, code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? String(error)})`, undefined, {
      cause: error,
    });
  }
}

/** The file's records as csv-parse reads them, each with its raw text (to count lines), behind the UTF-8 guard. */
function openParser(csvPath: string, delimiter: string): Parser {
  const parser = parse(csvParseOptions(delimiter));
  const source = createReadStream(csvPath);
  // pipeline destroys every stream when one fails or the consumer stops early; the error itself
  // reaches us through the parser's iterator.
  pipeline(source, new Utf8Guard(csvPath), parser, () => {});
  return parser;
}

/**
 * What stopped the stream, as a CsvFileError naming the record being read; undefined for anything
 * else (a bug here should surface as itself, not as a complaint about the user's file).
 */
function asFileError(error: unknown, file: string, recordLine: number): CsvFileError | undefined {
  if (error instanceof CsvFileError) return error;
  if (error instanceof CsvError) {
    switch (error.code) {
      case 'CSV_QUOTE_NOT_CLOSED':
        return new CsvFileError(
          file,
          `a quote opened in the record starting here is never closed (the file ends inside quotes)`,
          recordLine,
          { cause: error },
        );
      case 'CSV_MAX_RECORD_SIZE':
        return new CsvFileError(
          file,
          `the record starting here is over ${MAX_RECORD_BYTES / (1024 * 1024)} MB; is this a CSV, and are its quotes balanced?`,
          recordLine,
          { cause: error },
        );
      default:
        return new CsvFileError(file, `cannot parse the record starting here: ${error.message}`, recordLine, {
          cause: error,
        });
    }
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string' || !code.startsWith('E')) return undefined;
  return new CsvFileError(file, `cannot be read (${code})`, undefined, { cause: error });
}
