/**
 * The usage ledger: append-only JSON Lines under `<out>/ledger/`, one line per billed response.
 *
 * Each process appends to a file of its own (`<host>-<pid>-<time>.jsonl`), so workers on several
 * machines can share one output volume without interleaving writes, and a reader takes every
 * file in the folder. A line is on disk (written and flushed) before `append` resolves, which is
 * before the row counts as done or its job is acknowledged.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { LedgerEntry } from './types.js';

export function ledgerDir(outDir: string): string {
  return join(outDir, 'ledger');
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
  readonly path: string;

  constructor(
    outDir: string,
    private readonly options: { durable?: boolean } = {},
  ) {
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
    const safeHost = hostname().replace(/[^A-Za-z0-9.-]/g, '_');
    this.path = join(ledgerDir(outDir), `${stamp}-${safeHost}-${process.pid}.jsonl`);
  }

  /** Appends one line; resolves once it is written and flushed. */
  append(entry: LedgerEntry): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ line: `${JSON.stringify(entry)}\n`, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  /** Lines that arrive while a write is under way go out together in the next write (group commit). */
  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.pending.length > 0) {
      const group = this.pending.splice(0);
      try {
        const handle = await this.open();
        await handle.write(group.map((item) => item.line).join(''));
        if (this.options.durable ?? true) await handle.datasync();
        for (const item of group) item.resolve();
      } catch (error) {
        for (const item of group) item.reject(error);
      }
    }
    this.flushing = false;
  }

  private open(): Promise<FileHandle> {
    this.handle ??= mkdir(join(this.path, '..'), { recursive: true }).then(() => open(this.path, 'a'));
    return this.handle;
  }

  async close(): Promise<void> {
    while (this.flushing) await new Promise((resolve) => setTimeout(resolve, 5));
    const handle = this.handle;
    this.handle = undefined;
    if (handle) await (await handle).close();
  }
}

export interface ReadLedgerOptions {
  /** Called for each line that cannot be read (a line cut by a crash, for one). */
  onWarning?: (message: string) => void;
}

/** The ledger files of an output folder, oldest name first. */
export async function ledgerFiles(outDir: string): Promise<string[]> {
  const dir = ledgerDir(outDir);
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw error;
  });
  return names
    .filter((name) => name.endsWith('.jsonl'))
    .sort()
    .map((name) => join(dir, name));
}

/** Streams every entry of every ledger file; never loads a file whole. */
export async function* readLedger(outDir: string, options: ReadLedgerOptions = {}): AsyncGenerator<LedgerEntry> {
  for (const file of await ledgerFiles(outDir)) {
    const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    let lineNumber = 0;
    for await (const line of lines) {
      lineNumber += 1;
      if (line.length === 0) continue;
      let entry: LedgerEntry;
      try {
        entry = JSON.parse(line) as LedgerEntry;
      } catch {
        options.onWarning?.(`${file}:${lineNumber}: unreadable ledger line skipped (cut short by a crash?)`);
        continue;
      }
      yield entry;
    }
  }
}
