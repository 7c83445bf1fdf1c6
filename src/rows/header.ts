/**
 * A prompt CSV's header: which known columns it has and where, the names of the others (metadata),
 * and the checks that stop a file whose header cannot be used.
 */
import { delimiterName, type Delimiter } from './delimiter.js';
import { CsvFileError } from './problems.js';

export const KNOWN_COLUMNS = ['id', 'prompt', 'model', 'aspect_ratio', 'image_size', 'size', 'quality', 'reference_images', 'tags'] as const;
export type KnownColumn = (typeof KNOWN_COLUMNS)[number];

export interface Header {
  /** Position of each known column present. */
  known: Map<KnownColumn, number>;
  /** Every column by position: its display name, and the metadata key for unknown ones. */
  columns: { name: string; known?: KnownColumn }[];
}

/** Header names are matched trimmed and lower-cased; metadata keys are these normalized names. */
function normalizeHeader(name: string): string {
  return name.trim().toLowerCase();
}

/** Known columns also match with a space or hyphen for the underscore ("Aspect Ratio"). */
function knownColumn(name: string): KnownColumn | undefined {
  const key = name.replace(/[\s-]+/g, '_');
  return (KNOWN_COLUMNS as readonly string[]).includes(key) ? (key as KnownColumn) : undefined;
}

/** The header of the file's first non-blank record; throws CsvFileError for a name used twice or no "prompt" column. */
export function readHeader(file: string, line: number, record: string[], delimiter: Delimiter): Header {
  const known = new Map<KnownColumn, number>();
  const seen = new Map<string, number>();
  const columns: Header['columns'] = [];
  record.forEach((cell, index) => {
    const name = normalizeHeader(cell);
    const column = knownColumn(name);
    const key = column ?? name;
    if (name !== '') {
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        throw new CsvFileError(
          file,
          `the header names column ${earlier + 1} and column ${index + 1} both "${key}"; column names must be unique`,
          line,
        );
      }
      seen.set(key, index);
    }
    if (column) known.set(column, index);
    columns.push(column ? { name: column, known: column } : { name });
  });
  if (!known.has('prompt')) throw noPromptColumn(file, line, record, columns, delimiter);
  return { known, columns };
}

/** A header without a "prompt" column, with the columns found and, as a wrong delimiter is the usual reason, the one it looks like. */
function noPromptColumn(file: string, line: number, record: string[], columns: Header['columns'], delimiter: Delimiter): CsvFileError {
  const names = columns.map((c) => c.name).filter((n) => n !== '');
  // Named, since a wrong delimiter is the usual reason: the header came out as one column.
  const how = `read as ${delimiterName(delimiter.value)}${delimiter.given ? ', as --delimiter says' : ''}`;
  const only = record.length === 1 ? (record[0] ?? '') : '';
  const other = [',', ';', '\t', '|'].find((d) => d !== delimiter.value && only.includes(d));
  const hint = other ? `; it looks ${delimiterName(other)}: give --delimiter ${other === '\t' ? 'tab' : `'${other}'`}` : '';
  return new CsvFileError(
    file,
    `the header has no "prompt" column (found: ${names.length > 0 ? names.join(', ') : 'nothing'}; ${how})${hint}`,
    line,
  );
}

/** A known column's cell of a record, trimmed; '' when the header has no such column. */
export function cellOf(record: string[], header: Header, column: KnownColumn): string {
  const index = header.known.get(column);
  return index === undefined ? '' : (record[index] ?? '').trim();
}
