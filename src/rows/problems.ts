/**
 * What is wrong with a prompt CSV: a row's problem (the row is rejected, the file goes on) or the
 * file's (CsvFileError: reading stops), and what one record of the file reads as.
 */
import type { Row } from '../core/types.js';

export interface RowProblem {
  /** The CSV path as the user gave it. */
  file: string;
  /** Line where the record starts (1 = header). */
  line: number;
  /** Header name of the column at fault, `column N` for an unnamed one, '' for the record as a whole. */
  column: string;
  reason: string;
}

/** A record read: its row, or one of its problems (a bad record reads as every problem it has). */
export type RowRead = { row: Row } | { problem: RowProblem };

/** `file:line: column: reason` (`file:line: reason` when the problem is the whole record). */
export function formatProblem(p: RowProblem): string {
  return p.column === '' ? `${p.file}:${p.line}: ${p.reason}` : `${p.file}:${p.line}: ${p.column}: ${p.reason}`;
}

/** The file as a whole cannot be used; `line` says where reading stopped when that is known. */
export class CsvFileError extends Error {
  readonly file: string;
  readonly line?: number;
  /** The message without the `file:line:` prefix. */
  readonly reason: string;

  constructor(file: string, reason: string, line?: number, options?: ErrorOptions) {
    super(line === undefined ? `${file}: ${reason}` : `${file}:${line}: ${reason}`, options);
    this.name = 'CsvFileError';
    this.file = file;
    this.reason = reason;
    if (line !== undefined) this.line = line;
  }
}
