/**
 * Ships a bucket output's ledger segments from this machine's spool folder to `ledger/` in the
 * bucket: each closed segment when it is closed, and every segment a process of this machine
 * left behind (killed, or its upload failed) when a process starts, at each rotation and at exit.
 *
 * A segment is uploaded whole under its own name, then removed from the spool; a kill between
 * the two leaves it in both places, and it is uploaded again (the same bytes) by the next ship.
 * Readers take a name once (ledger-files.ts). A segment whose upload fails stays in the spool,
 * where readers on this machine still count it, until a later ship gets it out.
 */
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { processAlive, safeHostname } from './host-processes.js';
import { LEDGER_DIR, segmentWriter } from './ledger-files.js';
import type { S3Bucket } from './s3-bucket.js';

/** A spooled segment no process is writing: of a process of this machine that is gone, or this process's own but `current`. */
export function isLeftover(name: string, current?: string): boolean {
  const writer = segmentWriter(name);
  if (!writer || writer.host !== safeHostname()) return false;
  return writer.pid === process.pid ? name !== current : !processAlive(writer.pid);
}

export class LedgerShipper {
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Segments whose upload failed, warned about once each. */
  private readonly warned = new Set<string>();

  constructor(
    private readonly bucket: S3Bucket,
    /** The spool's ledger folder. */
    readonly dir: string,
    private readonly warn: (message: string) => void,
  ) {}

  /** Uploads one closed segment and removes it from the spool; never rejects (see `warn`). */
  ship(path: string): Promise<void> {
    let shipping = this.inFlight.get(path);
    if (!shipping) {
      shipping = this.upload(path).finally(() => this.inFlight.delete(path));
      this.inFlight.set(path, shipping);
    }
    return shipping;
  }

  private async upload(path: string): Promise<void> {
    try {
      await this.bucket.moveIn(path, `${LEDGER_DIR}/${basename(path)}`, 'application/x-ndjson');
      this.warned.delete(path);
    } catch (error) {
      // Shipped already by another process of this machine, and removed.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      if (this.warned.has(path)) return;
      this.warned.add(path);
      this.warn(`ledger segment ${path} not shipped to ${this.bucket.locate(LEDGER_DIR)} yet (it stays in the spool and is tried again): ${(error as Error).message}`);
    }
  }

  /**
   * Ships the segments of this machine that no process is writing: those of processes that are
   * gone, and this process's own closed ones (`current` is the one it writes now).
   */
  async shipLeftovers(current?: string): Promise<void> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const left = names.filter((name) => isLeftover(name, current === undefined ? undefined : basename(current)));
    await Promise.all(left.map((name) => this.ship(join(this.dir, name))));
  }

  /** Waits for uploads under way. */
  async settle(): Promise<void> {
    await Promise.all([...this.inFlight.values()]);
  }
}
