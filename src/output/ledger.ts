/**
 * The usage ledger: append-only JSON Lines, one line per billed response.
 *
 * Each process appends to a file of its own (`<time>-<host>-<pid>.jsonl`), so workers on several
 * machines can share one output volume without interleaving writes, and a reader takes every
 * file (ledger-files.ts). A line is on disk (written and flushed) before `append` resolves, which
 * is before the row counts as done or its job is acknowledged.
 *
 * A bucket output's ledger is written the same way in this machine's spool folder, in segments:
 * a new file from 8 MB on, or once a minute while lines come, and each closed one is shipped to
 * the bucket (ledger-shipping.ts), as the last one is at exit. A billed line is on this disk
 * from the moment it is counted, and in the bucket within a minute or so.
 */
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { BillingRecord } from '../cost/billing.js';
import type { LedgerEntry } from '../core/types.js';
import { geminiBilling } from '../providers/gemini/usage.js';
import { ledgerDir, ledgerFileName, ledgerSources, type LinePiece } from './ledger-files.js';

export { ledgerDir, ledgerFiles } from './ledger-files.js';

/** How a spooled ledger starts new files, and what is done with each closed one. */
export interface LedgerSegments {
  /** A new file once the open one holds this many bytes. */
  maxBytes: number;
  /** ...or once it has held lines for this long. */
  maxAgeMs: number;
  /** Called with each closed file (never rejects); awaited at `close`. */
  ship(path: string): Promise<void>;
}

interface PendingLine {
  line: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class Ledger {
  private handle?: Promise<FileHandle>;
  private pending: PendingLine[] = [];
  private flushing = false;
  /** After a failed or partial write the file may end inside a line: start the next on a new one. */
  private broken = false;
  private currentPath: string;
  /** Bytes in the open file; a segment with none is not closed for its age. */
  private bytes = 0;
  private segment = 1;
  private rotateDue = false;
  private readonly timer?: NodeJS.Timeout;

  constructor(
    private readonly outDir: string,
    private readonly options: { durable?: boolean; segments?: LedgerSegments } = {},
  ) {
    this.currentPath = this.newPath();
    const segments = options.segments;
    if (segments) {
      this.timer = setInterval(() => {
        if (this.bytes === 0) return;
        this.rotateDue = true;
        if (!this.flushing) void this.flush();
      }, segments.maxAgeMs);
      // A ledger waiting for lines does not keep a process alive.
      this.timer.unref();
    }
  }

  /** The file lines go to now. */
  get path(): string {
    return this.currentPath;
  }

  private newPath(): string {
    return join(ledgerDir(this.outDir), ledgerFileName(this.options.segments ? this.segment++ : undefined));
  }

  /** Appends one line; resolves once it is written and flushed. */
  append(entry: LedgerEntry): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ line: `${JSON.stringify(entry)}\n`, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  /**
   * Lines that arrive while a write is under way go out together in the next write (group
   * commit); a segment is closed between two writes, never during one.
   */
  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.pending.length > 0 || this.rotateDue) {
      if (this.pending.length > 0) await this.writeGroup(this.pending.splice(0));
      const segments = this.options.segments;
      if (segments && (this.rotateDue || this.bytes >= segments.maxBytes)) await this.rotate(segments);
    }
    this.flushing = false;
  }

  private async writeGroup(group: PendingLine[]): Promise<void> {
    try {
      const handle = await this.open();
      const bytes = Buffer.from((this.broken ? '\n' : '') + group.map((item) => item.line).join(''));
      this.broken = true;
      // One write may take fewer bytes than given (a nearly full disk): write the rest too.
      for (let offset = 0; offset < bytes.length; ) offset += (await handle.write(bytes, offset)).bytesWritten;
      if (this.options.durable ?? true) await handle.datasync();
      this.broken = false;
      this.bytes += bytes.length;
      for (const item of group) item.resolve();
    } catch (error) {
      for (const item of group) item.reject(error);
    }
  }

  /** Closes the open segment (its lines are on disk already), starts the next and ships the closed one. */
  private async rotate(segments: LedgerSegments): Promise<void> {
    this.rotateDue = false;
    if (this.bytes === 0) return;
    const closed = this.currentPath;
    await this.closeHandle();
    this.currentPath = this.newPath();
    this.bytes = 0;
    this.broken = false;
    void segments.ship(closed);
  }

  private open(): Promise<FileHandle> {
    this.handle ??= mkdir(join(this.currentPath, '..'), { recursive: true })
      .then(() => open(this.currentPath, 'a'))
      .catch((error: unknown) => {
        // A failed open is not kept: the next line tries again.
        this.handle = undefined;
        throw error;
      });
    return this.handle;
  }

  private async closeHandle(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    // Its lines were flushed as they were written: a failed close loses none of them.
    if (handle) await (await handle).close().catch(() => undefined);
  }

  async close(): Promise<void> {
    while (this.flushing) await new Promise((resolve) => setTimeout(resolve, 5));
    clearInterval(this.timer);
    const opened = this.handle !== undefined;
    await this.closeHandle();
    if (opened && this.options.segments) await this.options.segments.ship(this.currentPath);
  }
}

export interface ReadLedgerOptions {
  /** Called for each line that cannot be read (a line cut by a crash, for one). */
  onWarning?: (message: string) => void;
}

/**
 * What a line is billed as. A line of an earlier version has no billing record: it is a Gemini
 * line, billed as its usageMetadata says.
 */
export function billingOfEntry(entry: LedgerEntry): BillingRecord {
  return entry.billing ?? geminiBilling(entry.usageMetadata ?? {});
}

/** The provider of a line (`gemini` for lines of earlier versions, which name none). */
export function providerOfEntry(entry: LedgerEntry): string {
  return entry.provider ?? 'gemini';
}

/** The start of an ISO time: what a report needs to place a line on its day. */
const TIME_PATTERN = /^\d{4}-\d{2}-\d{2}T/;

/**
 * One line → its entry, or why not. Only what a reader relies on is checked (the strings it keys
 * on, and that usageMetadata is an object), so a ledger of an older version still reads.
 */
function parseLine(line: string): LedgerEntry | string {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return 'unreadable ledger line skipped (cut short by a crash?)';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'ledger line skipped: not a JSON object';
  const entry = value as Partial<LedgerEntry>;
  if (typeof entry.ts !== 'string' || !TIME_PATTERN.test(entry.ts) || typeof entry.model !== 'string' || typeof entry.batch !== 'string') {
    return 'ledger line skipped: it lacks a time (ts), model or batch';
  }
  if (entry.usageMetadata !== undefined && (typeof entry.usageMetadata !== 'object' || entry.usageMetadata === null)) {
    return 'ledger line skipped: its usageMetadata is not an object';
  }
  return entry as LedgerEntry;
}

/**
 * Calls `visit` with each entry of every ledger file, as soon as its line is parsed; never loads
 * a file whole. A line that cannot be read is skipped with a warning naming its file and line.
 *
 * The fast way for a reader that only sums (the report): one await per read of 64 KiB, not one
 * per line (the per-line promises of an async generator cost about 0.3 s over a million lines),
 * and each entry can be dropped as soon as it is visited.
 */
export async function scanLedger(outDir: string, visit: (entry: LedgerEntry) => void, options: ReadLedgerOptions = {}): Promise<void> {
  for await (const { name, lines, firstLine } of ledgerPieces(outDir)) {
    for (let index = 0; index < lines.length; index += 1) {
      const entry = entryOf(name, lines[index]!, firstLine + index, options);
      if (entry) visit(entry);
    }
  }
}

/** Every ledger file's lines, a piece at a time, with the file's name; its clients closed at the end. */
async function* ledgerPieces(outDir: string): AsyncGenerator<LinePiece & { name: string }> {
  const ledger = await ledgerSources(outDir);
  try {
    for (const source of ledger.sources) {
      for await (const piece of source.pieces()) yield { name: source.name, ...piece };
    }
  } finally {
    ledger.close();
  }
}

function entryOf(file: string, text: string, lineNumber: number, options: ReadLedgerOptions): LedgerEntry | undefined {
  // A byte order mark (a file saved by an editor) is not part of the first line's JSON.
  const line = lineNumber === 1 && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  // Blank lines (an editor's trailing newline) are not entries; checked cheaply, as most lines start with '{'.
  if (line.length === 0 || (line.charCodeAt(0) <= 0x20 && line.trim().length === 0)) return undefined;
  const entry = parseLine(line);
  if (typeof entry !== 'string') return entry;
  options.onWarning?.(`${file}:${lineNumber}: ${entry}`);
  return undefined;
}

/** Streams every entry of every ledger file; never loads a file whole. */
export async function* readLedger(outDir: string, options: ReadLedgerOptions = {}): AsyncGenerator<LedgerEntry> {
  for await (const { name, lines, firstLine } of ledgerPieces(outDir)) {
    for (let index = 0; index < lines.length; index += 1) {
      const entry = entryOf(name, lines[index]!, firstLine + index, options);
      if (entry) yield entry;
    }
  }
}
