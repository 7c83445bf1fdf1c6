/**
 * Prompt CSV → validated rows. The file is streamed (catalogs run to 100k rows), every bad row is
 * reported with its line and column so a user can fix the file in one pass, and only a file that
 * cannot be read as a CSV at all stops the reading.
 */
import { isAscii } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import { CsvError, parse } from 'csv-parse';
import { readImageMime, sniffImageMime, type ImageMime } from './image-type.js';
import { UsageError } from '../core/errors.js';
import { DEFAULT_MODEL, normalizeImageSize, rulesOf, unknownModelReason, type ModelRules } from '../providers/models.js';
import { MAX_GEMINI_REFERENCE_BYTES } from '../providers/gemini/models.js';
import type { OptionValue } from '../providers/row-options.js';
import type { PriceTable } from '../cost/pricing.js';
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

export interface RowDefaults {
  model: string;
  aspectRatio?: string;
  imageSize?: string;
}

/** How a file is read, beyond its rows' defaults: what `run`, `enqueue` and `estimate` take as flags. */
export interface CsvReading {
  /** The field delimiter (`--delimiter`); detected from the header line when not given. */
  delimiter?: string;
  /**
   * A model id named in the file that this version does not know: `'refuse'` makes it a row
   * problem (`--strict`); a function is told of each such id once, at its first row (a warning).
   * Unset: such rows run with the common limits, without a word (catalog firings).
   */
  unknownModel?: 'refuse' | ((model: string, where: { file: string; line: number }) => void);
}

export interface ReadRowsOptions extends CsvReading {
  defaults: RowDefaults;
  /**
   * Given when the batch has a budget: a row whose model has no price in this table is refused,
   * since its spend could not be counted against the cap.
   */
  budgetPrices?: PriceTable;
}

export type RowRead = { row: Row } | { problem: RowProblem };

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

export const KNOWN_COLUMNS = ['id', 'prompt', 'model', 'aspect_ratio', 'image_size', 'size', 'quality', 'reference_images', 'tags'] as const;
type KnownColumn = (typeof KNOWN_COLUMNS)[number];

/** Gemini's limit on a row's reference images together (see providers/gemini/models.ts). */
export const MAX_REFERENCE_BYTES = MAX_GEMINI_REFERENCE_BYTES;

/**
 * One record may not exceed this. A prompt is a few KB at most; without a cap, a big file with no
 * line breaks (not a CSV) would be held in memory whole.
 */
export const MAX_RECORD_BYTES = 1024 * 1024;

const MODEL_ID = /^[a-z0-9][a-z0-9.-]*$/i;
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$/;

// ---------------------------------------------------------------------------------------------
// Bytes: csv-parse decodes invalid UTF-8 into U+FFFD without a word, and happily parses binary
// files, so a guard in front of it checks the bytes and knows the line of a bad one.

function looksLike(head: Uint8Array): string | undefined {
  if (head[0] === 0xff && head[1] === 0xfe) return 'is UTF-16 text; save it as UTF-8 (in Excel: "CSV UTF-8")';
  if (head[0] === 0xfe && head[1] === 0xff) return 'is UTF-16 text; save it as UTF-8 (in Excel: "CSV UTF-8")';
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) {
    return 'is a ZIP file (an Excel workbook?), not a CSV; export it as "CSV UTF-8"';
  }
  const image = sniffImageMime(head);
  if (image) return `is an image (${image}), not a CSV`;
  return undefined;
}

/**
 * Passes bytes through unchanged after checking they are UTF-8 text: throws CsvFileError naming
 * the line of the first invalid byte, or of a NUL byte (binary data, never in a text CSV).
 */
class Utf8Guard extends Transform {
  private line = 1;
  private previousWasCr = false;
  /** Continuation bytes still expected by the current multi-byte sequence. */
  private need = 0;
  /** Allowed range of the next continuation byte (narrower right after some lead bytes). */
  private lo = 0x80;
  private hi = 0xbf;
  private lead = 0;
  private first = true;

  constructor(private readonly file: string) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const error = this.check(chunk);
    if (error) callback(error);
    else callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.need > 0) callback(this.fail('not UTF-8 text: the file ends in the middle of a character'));
    else callback();
  }

  private fail(reason: string): CsvFileError {
    return new CsvFileError(this.file, reason, this.line);
  }

  private check(bytes: Buffer): CsvFileError | undefined {
    if (this.first) {
      this.first = false;
      const what = looksLike(bytes.subarray(0, 64));
      if (what) return new CsvFileError(this.file, what);
    }
    // The usual chunk: ASCII with LF line ends, checked and counted by native scans instead of
    // a loop over every byte.
    if (this.need === 0 && bytes.indexOf(0x0d) === -1 && bytes.indexOf(0x00) === -1 && isAscii(bytes)) {
      let at = bytes.indexOf(0x0a);
      if (at === 0 && this.previousWasCr) at = bytes.indexOf(0x0a, 1);
      while (at !== -1) {
        this.line++;
        at = bytes.indexOf(0x0a, at + 1);
      }
      if (bytes.length > 0) this.previousWasCr = false;
      return undefined;
    }
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i] ?? 0;
      if (this.need > 0) {
        // The byte named is the sequence's lead byte: that is the one a Latin-1 file got wrong.
        if (b < this.lo || b > this.hi) return this.invalid(this.lead);
        this.need--;
        this.lo = 0x80;
        this.hi = 0xbf;
        continue;
      }
      if (b === 0x00) return this.fail('has NUL bytes, so it is a binary file, not a text CSV');
      if (b < 0x80) {
        // Lines as an editor numbers them: CRLF, LF and a lone CR each end one.
        if (b === 0x0d || (b === 0x0a && !this.previousWasCr)) this.line++;
        this.previousWasCr = b === 0x0d;
        continue;
      }
      this.previousWasCr = false;
      this.lead = b;
      // Lead bytes; the narrowed ranges exclude overlong forms, surrogates and code points > U+10FFFF.
      if (b >= 0xc2 && b <= 0xdf) this.need = 1;
      else if (b === 0xe0) [this.need, this.lo] = [2, 0xa0];
      else if (b === 0xed) [this.need, this.hi] = [2, 0x9f];
      else if (b >= 0xe1 && b <= 0xef) this.need = 2;
      else if (b === 0xf0) [this.need, this.lo] = [3, 0x90];
      else if (b === 0xf4) [this.need, this.hi] = [3, 0x8f];
      else if (b >= 0xf1 && b <= 0xf3) this.need = 3;
      else return this.invalid(b);
    }
    return undefined;
  }

  private invalid(b: number): CsvFileError {
    const hex = b.toString(16).padStart(2, '0');
    return this.fail(`not UTF-8 text (byte 0x${hex}); save the file as UTF-8 (in Excel: "CSV UTF-8")`);
  }
}

// ---------------------------------------------------------------------------------------------
// Delimiter: Excel writes ";" where the decimal mark is a comma (much of Europe), and feeds come
// tab-separated; the header line says which.

const DETECTED_DELIMITERS = [',', ';', '\t'];

/** `comma-separated`, `semicolon-separated`, `tab-separated`, `"|"-separated`. */
export function delimiterName(delimiter: string): string {
  const names: Record<string, string> = { ',': 'comma-separated', ';': 'semicolon-separated', '\t': 'tab-separated' };
  return names[delimiter] ?? `"${delimiter}"-separated`;
}

/**
 * The delimiter of the text's first non-blank line (the header): whichever of `,` `;` and tab it
 * holds most often outside quotes; a comma on a tie or when it holds none (a one-column file).
 */
export function delimiterOfHeader(text: string): string {
  const counts = new Map<string, number>();
  let quoted = false;
  let seen = false;
  for (let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') quoted = !quoted;
    else if (quoted) continue;
    else if (c === '\n' || c === '\r') {
      if (seen) break;
    } else if (DETECTED_DELIMITERS.includes(c)) counts.set(c, (counts.get(c) ?? 0) + 1);
    if (c.trim() !== '') seen = true;
  }
  let best = ',';
  for (const delimiter of DETECTED_DELIMITERS) if ((counts.get(delimiter) ?? 0) > (counts.get(best) ?? 0)) best = delimiter;
  return best;
}

/** The delimiter from the file's first 64 KB; a comma when it cannot be read (the reading says why). */
async function detectDelimiter(csvPath: string): Promise<string> {
  try {
    const handle = await open(csvPath, 'r');
    try {
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, 0);
      return delimiterOfHeader(buffer.toString('utf8', 0, bytesRead));
    } finally {
      await handle.close();
    }
  } catch {
    return ',';
  }
}

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

/** Header names are matched trimmed and lower-cased; metadata keys are these normalized names. */
function normalizeHeader(name: string): string {
  return name.trim().toLowerCase();
}

/** Known columns also match with a space or hyphen for the underscore ("Aspect Ratio"). */
function knownColumn(name: string): KnownColumn | undefined {
  const key = name.replace(/[\s-]+/g, '_');
  return (KNOWN_COLUMNS as readonly string[]).includes(key) ? (key as KnownColumn) : undefined;
}

interface Header {
  /** Position of each known column present. */
  known: Map<KnownColumn, number>;
  /** Every column by position: its display name, and the metadata key for unknown ones. */
  columns: { name: string; known?: KnownColumn }[];
}

function readHeader(file: string, line: number, record: string[], delimiter: { value: string; given: boolean }): Header {
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
  if (!known.has('prompt')) {
    const names = columns.map((c) => c.name).filter((n) => n !== '');
    // Named, since a wrong delimiter is the usual reason: the header came out as one column.
    const how = `read as ${delimiterName(delimiter.value)}${delimiter.given ? ', as --delimiter says' : ''}`;
    const only = record.length === 1 ? (record[0] ?? '') : '';
    const other = [',', ';', '\t', '|'].find((d) => d !== delimiter.value && only.includes(d));
    const hint = other ? `; it looks ${delimiterName(other)}: give --delimiter ${other === '\t' ? 'tab' : `'${other}'`}` : '';
    throw new CsvFileError(
      file,
      `the header has no "prompt" column (found: ${names.length > 0 ? names.join(', ') : 'nothing'}; ${how})${hint}`,
      line,
    );
  }
  return { known, columns };
}

function splitList(cell: string): string[] {
  if (cell === '') return [];
  return cell
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

function formatMb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

// ---------------------------------------------------------------------------------------------
// Reference images: checked once per path, however many rows use it.

/** A file that can be read, with its type by content (none: not an image); or why it cannot. */
type ReferenceCheck = { ok: true; size: number; mime?: ImageMime } | { ok: false; reason: string };

function checkReference(absolute: string): Promise<ReferenceCheck> {
  return (async (): Promise<ReferenceCheck> => {
    try {
      const info = await stat(absolute);
      if (!info.isFile()) return { ok: false, reason: 'is not a file' };
      const mime = await readImageMime(absolute);
      return mime ? { ok: true, size: info.size, mime } : { ok: true, size: info.size };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, reason: 'does not exist' };
      if (code === 'EACCES' || code === 'EPERM') return { ok: false, reason: 'cannot be read (permission denied)' };
      return { ok: false, reason: `cannot be read (${code ?? String(error)})` };
    }
  })();
}

// ---------------------------------------------------------------------------------------------

interface IdOwner {
  id: string;
  line: number;
  generated: boolean;
}

/**
 * The ids seen so far, compared without regard to case (ids that differ only in case name the
 * same files on macOS and Windows). Every row's id stays here to the end of the file, so it is
 * kept off the JavaScript heap, in typed arrays: a few dozen bytes a row (the id's characters,
 * where they are, its line, hash slots) where a Map of strings and objects takes over 100, and
 * where a heap that holds 100k objects to the end also grows far beyond them. Ids here are ASCII (safe ids and
 * default ids); any other goes to a plain Map by its lower-cased form, so the rule is
 * `a.toLowerCase() === b.toLowerCase()` whatever the ids are.
 */
class IdRegistry {
  private text = Buffer.allocUnsafe(64 * 1024);
  private textUsed = 0;
  /** Per id, in the order added: where its characters start in `text`, how many, its line (×2, +1 for a default id). */
  private starts = new Uint32Array(1024);
  private lengths = new Uint16Array(1024);
  private codes = new Float64Array(1024);
  private count = 0;
  /** Open addressing: an id's number + 1, or 0 for a free slot. Never more than half full. */
  private slots = new Uint32Array(2048);
  private readonly others = new Map<string, IdOwner>();

  has(id: string): boolean {
    return this.get(id) !== undefined;
  }

  get(id: string): IdOwner | undefined {
    if (fitsText(id)) return this.find(id) ?? (this.others.size > 0 ? this.others.get(id.toLowerCase()) : undefined);
    // Lower-casing some non-ASCII letters gives ASCII ones (the Kelvin sign gives "k").
    const lower = id.toLowerCase();
    return this.others.get(lower) ?? (fitsText(lower) ? this.find(lower) : undefined);
  }

  private find(id: string): IdOwner | undefined {
    const mask = this.slots.length - 1;
    for (let slot = hashLower(id) & mask; ; slot = (slot + 1) & mask) {
      const entry = this.slots[slot]!;
      if (entry === 0) return undefined;
      const index = entry - 1;
      if (this.sameLower(index, id)) {
        const start = this.starts[index]!;
        const code = this.codes[index]!;
        return { id: this.text.toString('latin1', start, start + this.lengths[index]!), line: Math.floor(code / 2), generated: code % 2 === 1 };
      }
    }
  }

  /** Adds an id not in the registry yet (see `get`). */
  add(owner: IdOwner): void {
    const { id } = owner;
    if (!fitsText(id)) {
      this.others.set(id.toLowerCase(), owner);
      return;
    }
    if (this.count === this.starts.length) this.growEntries();
    if ((this.count + 1) * 2 > this.slots.length) this.growSlots();
    if (this.textUsed + id.length > this.text.length) {
      const text = Buffer.allocUnsafe(Math.max(this.text.length * 2, this.textUsed + id.length));
      this.text.copy(text, 0, 0, this.textUsed);
      this.text = text;
    }
    const index = this.count++;
    this.starts[index] = this.textUsed;
    this.lengths[index] = id.length;
    this.codes[index] = owner.line * 2 + (owner.generated ? 1 : 0);
    this.textUsed += this.text.write(id, this.textUsed, 'latin1');
    this.place(index, hashLower(id));
  }

  private place(index: number, hash: number): void {
    const mask = this.slots.length - 1;
    let slot = hash & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = index + 1;
  }

  private sameLower(index: number, id: string): boolean {
    const length = this.lengths[index]!;
    if (length !== id.length) return false;
    const start = this.starts[index]!;
    for (let i = 0; i < length; i++) if (lowerAscii(this.text[start + i]!) !== lowerAscii(id.charCodeAt(i))) return false;
    return true;
  }

  private growEntries(): void {
    const size = this.starts.length * 2;
    const starts = new Uint32Array(size);
    starts.set(this.starts);
    this.starts = starts;
    const lengths = new Uint16Array(size);
    lengths.set(this.lengths);
    this.lengths = lengths;
    const codes = new Float64Array(size);
    codes.set(this.codes);
    this.codes = codes;
  }

  private growSlots(): void {
    this.slots = new Uint32Array(this.slots.length * 2);
    for (let index = 0; index < this.count; index++) {
      const start = this.starts[index]!;
      this.place(index, hashLower(this.text.toString('latin1', start, start + this.lengths[index]!)));
    }
  }
}

function lowerAscii(code: number): number {
  return code >= 0x41 && code <= 0x5a ? code | 0x20 : code;
}

/** Whether `IdRegistry` keeps an id in its typed arrays: ASCII, and short enough to count in 16 bits. */
function fitsText(text: string): boolean {
  if (text.length > 0xffff) return false;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** FNV-1a of the lower-cased characters. */
function hashLower(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ lowerAscii(text.charCodeAt(i)), 0x01000193);
  return hash >>> 0;
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

  // Fail early and plainly on the common mistakes, before any stream is made.
  try {
    const info = await stat(csvPath);
    if (info.isDirectory()) throw new CsvFileError(file, 'is a folder, not a CSV file');
  } catch (error) {
    if (error instanceof CsvFileError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new CsvFileError(file, code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? String(error)})`, undefined, {
      cause: error,
    });
  }

  const delimiter = { value: options.delimiter ?? (await detectDelimiter(csvPath)), given: options.delimiter !== undefined };
  const parser = parse({
    bom: true,
    delimiter: delimiter.value,
    raw: true,
    // Blank lines come through as records so every physical line is seen and counted.
    skip_empty_lines: false,
    // Wrong field counts become row problems instead of ending the file.
    relax_column_count: true,
    // `He said "hi"` in an unquoted cell is meant literally; only a cell that starts with a quote is quoted.
    relax_quotes: true,
    // Files glued together from several editors mix line endings.
    record_delimiter: ['\r\n', '\n', '\r'],
    max_record_size: MAX_RECORD_BYTES,
  });
  const source = createReadStream(csvPath);
  // pipeline destroys every stream when one fails or the consumer stops early; the error itself
  // reaches us through the parser's iterator.
  pipeline(source, new Utf8Guard(file), parser, () => {});

  const referenceCache = new Map<string, Promise<ReferenceCheck>>();
  // A file names a handful of models; looking each up once per row is a measurable cost at 100k
  // rows. Bounded, so a file of made-up model names does not grow it without end.
  const modelCache = new Map<string, ModelRules>();
  const lookUpModel = (model: string): ModelRules => {
    let entry = modelCache.get(model);
    if (!entry) {
      entry = rulesOf(model);
      if (modelCache.size < 64) modelCache.set(model, entry);
    }
    return entry;
  };
  /** Unknown model ids already told of (bounded: a warning per id, not a list of a whole file's). */
  const toldUnknown = new Set<string>();
  const defaultSize = defaults.imageSize === undefined ? undefined : normalizeImageSize(defaults.imageSize) || undefined;
  const ids = new IdRegistry();
  /** Bases of ids that end in `-<n>` (n ≥ 2), to tell a clash with a second image (`<base>-2.png`). */
  const suffixedBases = new Map<string, IdOwner>();
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
        const checked = checkRecord(record, line, recordNumber, header, headerLine);
        for (const read of checked instanceof Promise ? await checked : checked) batch.push(read);
      }
      if (batch.length > 0) yield batch;
    }
  } catch (error) {
    throw asFileError(error, file, nextLine) ?? error;
  }
  if (!header) throw new CsvFileError(file, 'is empty; a prompt CSV starts with a header row naming a "prompt" column');

  /** The row, or every problem of the record, in column order. */
  /**
   * A row's second image is `<id>-2.<ext>`: so an id `shot-2` and an id `shot` in one file could
   * write the same file. Either order is refused (case-insensitively, as file names go).
   */
  function secondImageClash(id: string, line: number, generated: boolean): string | undefined {
    const suffixed = /^(.+)-(\d+)$/.exec(id);
    if (suffixed && Number(suffixed[2]) >= 2) {
      const base = ids.get(suffixed[1]!);
      if (base) return `"${id}" is the file name of image ${Number(suffixed[2])} of row "${base.id}" (line ${base.line}); choose another id`;
      const key = suffixed[1]!.toLowerCase();
      if (!suffixedBases.has(key)) suffixedBases.set(key, { id, line, generated });
      return undefined;
    }
    const other = suffixedBases.get(id.toLowerCase());
    return other ? `"${id}" would name its second, third ... image like the row "${other.id}" (line ${other.line}); choose another id` : undefined;
  }

  function checkRecord(record: string[], line: number, number: number, head: Header, headLine: number): RowRead[] | Promise<RowRead[]> {
    const problem = (column: string, reason: string): RowRead => ({ problem: { file, line, column, reason } });
    const defaultId = `row-${String(number).padStart(5, '0')}`;

    if (record.length !== head.columns.length) {
      const more = record.length > head.columns.length;
      // The cells no longer line up with the header, so checking them one by one would only mislead.
      // Its default id is still taken, so fixing this row later cannot make a clash appear.
      if (!ids.has(defaultId)) ids.add({ id: defaultId, line, generated: true });
      return [
        problem(
          '',
          `has ${record.length} fields but the header (line ${headLine}) has ${head.columns.length}` +
            (more ? `; a cell holding the delimiter (${delimiterName(delimiter.value)} file) must be in double quotes, the quote its first character${delimiter.value === ';' ? ', so are `tags` and `reference_images` lists ("red;blue")' : ''}` : ''),
        ),
      ];
    }

    const cell = (column: KnownColumn): string => {
      const index = head.known.get(column);
      return index === undefined ? '' : (record[index] ?? '').trim();
    };
    const problems: RowRead[] = [];

    // id
    const givenId = cell('id');
    const id = givenId === '' ? defaultId : givenId;
    const generated = givenId === '';
    const unsafe = generated ? undefined : unsafeIdReason(givenId);
    if (unsafe) {
      problems.push(problem('id', `"${givenId}" cannot name output files: ${unsafe}`));
    } else {
      const owner = ids.get(id);
      if (owner) {
        const whose = owner.generated ? ` (the default id of that row, which has no id)` : '';
        const caseNote = owner.id !== id ? `; ids that differ only in case name the same files on macOS and Windows` : '';
        problems.push(
          problem(
            'id',
            generated
              ? `this row has no id and its default id "${id}" is already used on line ${owner.line}${caseNote}; give this row an id`
              : `"${id}" is already the id of line ${owner.line}${whose}${caseNote}`,
          ),
        );
      } else {
        const clash = secondImageClash(id, line, generated);
        if (clash) problems.push(problem('id', clash));
        else ids.add({ id, line, generated });
      }
    }

    // prompt: kept exactly as written; only a blank one is refused.
    const promptIndex = head.known.get('prompt') ?? -1;
    const prompt = record[promptIndex] ?? '';
    if (prompt.trim() === '') problems.push(problem('prompt', 'is empty; every row needs a prompt'));

    // model
    const modelCell = cell('model');
    const model = modelCell === '' ? defaults.model.trim() : modelCell;
    const fromDefault = (given: string): string => (given === '' ? ' (the default)' : '');
    const modelOk = MODEL_ID.test(model);
    if (!modelOk) {
      problems.push(problem('model', `"${model}"${fromDefault(modelCell)} is not a model id (like ${DEFAULT_MODEL})`));
    }
    if (modelOk && options.budgetPrices && !options.budgetPrices.priceOf(model, new Date().toISOString())) {
      problems.push(problem('model', `${model}${fromDefault(modelCell)} has no price, so a budget cannot be kept for it; give its price in a TOKENHOT_PRICES file`));
    }
    const rules = lookUpModel(model);
    const known = rules.known;
    // The default model (a flag) is checked once by the command, not on every row that takes it.
    if (modelOk && !known && modelCell !== '' && options.unknownModel) {
      if (options.unknownModel === 'refuse') problems.push(problem('model', `${unknownModelReason(model)}; --strict refuses it`));
      else if (!toldUnknown.has(model) && toldUnknown.size < 100) {
        toldUnknown.add(model);
        options.unknownModel(model, { file, line });
      }
    }

    // aspect_ratio, image_size, size, quality: the model's provider says which values it takes,
    // and which defaults do not apply to it. Sizes are written as people write them (`2k`) and
    // kept as the API requires them (`2K`).
    const given = (column: 'aspect_ratio' | 'size' | 'quality'): OptionValue | undefined => {
      const value = cell(column);
      return value === '' ? undefined : { value, fromDefault: false };
    };
    const ratioCell = cell('aspect_ratio');
    const defaultRatio = defaults.aspectRatio?.trim() || undefined;
    const sizeCell = cell('image_size');
    const imageSizeOption: OptionValue | undefined =
      sizeCell !== '' ? { value: normalizeImageSize(sizeCell), fromDefault: false, written: sizeCell } : defaultSize === undefined ? undefined : { value: defaultSize, fromDefault: true };
    const chosen = rules.check({
      aspectRatio: given('aspect_ratio') ?? (ratioCell === '' && defaultRatio !== undefined ? { value: defaultRatio, fromDefault: true } : undefined),
      imageSize: imageSizeOption,
      size: given('size'),
      quality: given('quality'),
    });
    if (modelOk) for (const { column, reason } of chosen.problems) problems.push(problem(column, reason));

    // reference_images
    const refs = splitList(cell('reference_images'));
    const referenceImages = refs.map((ref) => resolve(folder, ref));
    const refRules = rules.references;
    if (refs.length > 0 && modelOk && refs.length > refRules.max) {
      problems.push(
        problem('reference_images', refRules.max === 0 ? `${model} takes no reference images` : `${refs.length} images, but ${model} takes at most ${refRules.max}`),
      );
    }

    // The rest of the checks, and the row; after the reference images' files when there are any.
    const finish = (): RowRead[] => {
      // Unknown columns are metadata, kept as written. An unnamed column (a trailing comma in the
      // header) is ignored while empty, but a value in it would be lost silently, so it is reported.
      const metadata: [string, string][] = [];
      head.columns.forEach((column, index) => {
        if (column.known) return;
        const value = record[index] ?? '';
        if (column.name === '') {
          if (value.trim() !== '') problems.push(problem(`column ${index + 1}`, 'has a value but no name in the header'));
          return;
        }
        metadata.push([column.name, value]);
      });

      if (problems.length > 0) return problems;
      const row: Row = {
        id,
        line,
        prompt,
        model,
        ...(chosen.aspectRatio !== undefined ? { aspectRatio: chosen.aspectRatio } : {}),
        ...(chosen.imageSize !== undefined ? { imageSize: chosen.imageSize } : {}),
        ...(chosen.size !== undefined ? { size: chosen.size } : {}),
        ...(chosen.quality !== undefined ? { quality: chosen.quality } : {}),
        referenceImages,
        tags: [...new Set(splitList(cell('tags')))],
        // fromEntries defines own properties, so a column named "__proto__" stays plain data.
        metadata: Object.fromEntries(metadata),
      };
      return [{ row }];
    };

    // A model that takes none was told of above: its files are not worth a look.
    if (refs.length === 0 || (modelOk && refRules.max === 0)) return finish();
    return (async (): Promise<RowRead[]> => {
      const checks = await Promise.all(
        referenceImages.map((absolute) => {
          let check = referenceCache.get(absolute);
          if (!check) {
            check = checkReference(absolute);
            referenceCache.set(absolute, check);
          }
          return check;
        }),
      );
      let total = 0;
      let allOk = true;
      checks.forEach((check, i) => {
        const ref = refs[i] ?? '';
        const reason = !check.ok
          ? check.reason
          : !check.mime
            ? `is not a ${refRules.typeNames} image (judged by its content, not its name)`
            : !refRules.mimeTypes.includes(check.mime)
              ? `is ${check.mime}; reference images${rules.provider === 'gemini' ? '' : ` for ${model}`} must be ${refRules.typeNames}`
              : refRules.maxBytesEach !== undefined && check.size > refRules.maxBytesEach
                ? `is ${formatMb(check.size)}, over the ${refRules.maxBytesEach / (1024 * 1024)} MB ${model} takes per image`
                : undefined;
        if (reason === undefined) {
          total += check.ok ? check.size : 0;
          return;
        }
        allOk = false;
        const where = isAbsolute(ref) ? '' : ` (looked for ${referenceImages[i] ?? ref})`;
        const tilde = ref.startsWith('~') ? '; "~" is not expanded, write the full path' : '';
        problems.push(problem('reference_images', `"${ref}" ${reason}${where}${tilde}`));
      });
      if (allOk && refRules.maxBytesTotal !== undefined && total > refRules.maxBytesTotal) {
        problems.push(
          problem(
            'reference_images',
            `the images total ${formatMb(total)}, over the ${refRules.maxBytesTotal / (1024 * 1024)} MB a request's inline data is limited to`,
          ),
        );
      }
      return finish();
    })();
  }
}

function unsafeIdReason(id: string): string | undefined {
  if (id.includes('/') || id.includes('\\')) return 'it contains a slash';
  if (id.includes('..')) return 'it contains ".."';
  if (id.length > 120) return 'it is longer than 120 characters';
  if (/\.json$/i.test(id)) return 'it ends in ".json", which would clash with the sidecar files';
  if (!SAFE_ID.test(id)) return 'use letters, digits, ".", "_" and "-", starting with a letter or digit';
  return undefined;
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
