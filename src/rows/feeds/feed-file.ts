/**
 * A feed file → its header and records. Feeds are read whole: a Shopify product spans several
 * records, so grouping needs them all, and exports of a shop's catalog are megabytes, not the
 * gigabytes prompt CSVs are streamed for. The delimiter is read from the header line, as for
 * prompt CSVs (Merchant Center feeds are tab-separated, PIM exports use ";").
 */
import { readFile, stat } from 'node:fs/promises';
import { CsvError } from 'csv-parse';
import { parse } from 'csv-parse/sync';
import { CsvFileError, delimiterName, delimiterOfHeader } from '../csv.js';
import { csvParseOptions } from '../parse-options.js';
import type { FeedProblem, FeedRecord, FeedTable } from './types.js';

/** Largest feed read: well above a large shop's export, well below what would strain memory. */
export const MAX_FEED_BYTES = 256 * 1024 * 1024;

export interface FeedFileOptions {
  /** The field delimiter; read from the header line when not given. */
  delimiter?: string;
}

/** The table, and the records left out (a wrong number of fields) with their lines. */
export interface FeedFileRead {
  table: FeedTable;
  problems: FeedProblem[];
}

/**
 * Reads a feed. Throws CsvFileError when the file as a whole cannot be used (missing, not UTF-8
 * text, unbalanced quotes, no header, two columns of one name); a record whose field count
 * differs from the header's is left out and named in `problems`.
 */
export async function readFeedFile(path: string, options: FeedFileOptions = {}): Promise<FeedFileRead> {
  const text = await readFeedText(path);
  const delimiter = options.delimiter ?? delimiterOfHeader(text);
  const records = parseRecords(path, text, delimiter);
  const problems: FeedProblem[] = [];
  let header: { line: number; names: string[] } | undefined;
  const rows: FeedRecord[] = [];
  for (const { line, cells } of records) {
    if (cells.every((cell) => cell.trim() === '')) continue;
    if (!header) {
      header = { line, names: readHeader(path, line, cells) };
      continue;
    }
    if (cells.length !== header.names.length) {
      problems.push({
        file: path,
        line,
        column: '',
        reason: `has ${cells.length} fields but the header (line ${header.line}) has ${header.names.length}; left out (a cell holding the delimiter of this ${delimiterName(delimiter)} file must be in double quotes)`,
      });
      continue;
    }
    rows.push({ line, cells: cellsByName(header.names, cells) });
  }
  if (!header) throw new CsvFileError(path, 'is empty; a feed starts with a header row naming its columns');
  const columns = header.names.filter((name) => name !== '');
  return { table: { file: path, delimiter, columns, headerLine: header.line, records: rows }, problems };
}

/** The file's text, after the checks that tell a user what the file really is. */
async function readFeedText(path: string): Promise<string> {
  let bytes: Buffer;
  try {
    const info = await stat(path);
    if (info.isDirectory()) throw new CsvFileError(path, 'is a folder, not a feed file');
    if (info.size > MAX_FEED_BYTES) throw new CsvFileError(path, `is ${Math.round(info.size / 1024 / 1024)} MB; feeds are read whole, up to ${MAX_FEED_BYTES / 1024 / 1024} MB`);
    bytes = await readFile(path);
  } catch (error) {
    if (error instanceof CsvFileError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new CsvFileError(path, code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? String(error)})`, undefined, { cause: error });
  }
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new CsvFileError(path, 'is UTF-16 text; save it as UTF-8 (in Excel: "CSV UTF-8")');
  }
  if (bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) {
    throw new CsvFileError(path, 'is a ZIP file (an Excel workbook?), not a CSV; export it as "CSV UTF-8"');
  }
  const nul = bytes.indexOf(0);
  if (nul !== -1) throw new CsvFileError(path, 'has NUL bytes, so it is a binary file, not a text feed', lineAt(bytes, nul));
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new CsvFileError(path, 'not UTF-8 text; save the file as UTF-8 (in Excel: "CSV UTF-8")', lineAt(bytes, firstInvalidUtf8(bytes)));
  }
}

/** Records with the line each starts on, blank lines included (they are counted, then skipped). */
function parseRecords(path: string, text: string, delimiter: string): { line: number; cells: string[] }[] {
  let parsed: { record: string[]; raw: string }[];
  try {
    parsed = parse(text, csvParseOptions(delimiter)) as unknown as { record: string[]; raw: string }[];
  } catch (error) {
    if (!(error instanceof CsvError)) throw error;
    const line = typeof (error as CsvError & { lines?: number }).lines === 'number' ? (error as CsvError & { lines: number }).lines : undefined;
    const reason =
      error.code === 'CSV_QUOTE_NOT_CLOSED' ? 'a quote is never closed (the file ends inside quotes)' : `cannot be parsed as a ${delimiterName(delimiter)} file: ${error.message}`;
    throw new CsvFileError(path, reason, error.code === 'CSV_QUOTE_NOT_CLOSED' ? undefined : line, { cause: error });
  }
  const records: { line: number; cells: string[] }[] = [];
  let line = 1;
  for (const { record, raw } of parsed) {
    records.push({ line, cells: record });
    line += lineBreaks(raw);
  }
  return records;
}

/** Header names trimmed; two columns of one name (regardless of case) cannot both be named in a template. */
function readHeader(path: string, line: number, cells: string[]): string[] {
  const names = cells.map((cell) => cell.trim());
  const seen = new Map<string, number>();
  names.forEach((name, index) => {
    if (name === '') return;
    const earlier = seen.get(name.toLowerCase());
    if (earlier !== undefined) {
      throw new CsvFileError(path, `the header names column ${earlier + 1} and column ${index + 1} both "${name}"; column names must be unique`, line);
    }
    seen.set(name.toLowerCase(), index);
  });
  return names;
}

function cellsByName(names: string[], cells: string[]): Record<string, string> {
  // fromEntries defines own properties, so a column named "__proto__" stays plain data.
  return Object.fromEntries(names.flatMap((name, index) => (name === '' ? [] : [[name, cells[index] ?? '']])));
}

/** Line breaks in a record's raw text, as an editor counts them (CRLF, LF and a lone CR each one). */
function lineBreaks(raw: string): number {
  return raw.match(/\r\n|\r|\n/g)?.length ?? 0;
}

function lineAt(bytes: Buffer, offset: number): number {
  return (bytes.subarray(0, offset).toString('latin1').match(/\r\n|\r|\n/g)?.length ?? 0) + 1;
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
function firstInvalidUtf8(bytes: Buffer): number {
  // Decoding stops being lossless at the first bad byte; a binary search over prefixes finds it.
  let good = 0;
  let bad = bytes.length;
  while (bad - good > 4) {
    const middle = Math.floor((good + bad) / 2);
    try {
      // Streaming mode: a prefix that ends inside a valid character is not an error.
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, middle), { stream: true });
      good = middle;
    } catch {
      bad = middle;
    }
  }
  return good;
}
