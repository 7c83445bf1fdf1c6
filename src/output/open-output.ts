/**
 * The output of one process: its store (images and sidecars) and its ledger, for a local folder
 * or a bucket. A bucket's ledger is spooled and shipped (ledger-shipping.ts): this process ships
 * what a killed process of this machine left as it starts, its closed segments as it goes, and
 * its last one at `close`.
 */
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../core/errors.js';
import { Ledger } from './ledger.js';
import { LEDGER_DIR } from './ledger-files.js';
import { LedgerShipper } from './ledger-shipping.js';
import { OutputStore } from './storage.js';

/** A spooled ledger starts a new segment from this size on... */
const SEGMENT_BYTES = 8 * 1024 * 1024;
/** ...or after this long with lines in it: a bucket's ledger is at most about this far behind. */
const SEGMENT_MS = 60_000;

export interface Output {
  store: OutputStore;
  ledger: Ledger;
  /** Closes the ledger and, for a bucket, ships what is left in the spool. */
  close(): Promise<void>;
}

export interface OutputOptions {
  durable?: boolean;
  /** Where the spool folder and the bucket's settings are read. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Where a ledger segment that could not be shipped is said. @default a line on stderr */
  warn?: (message: string) => void;
}

/** Opens the output; a bucket that cannot be used is a usage error, before anything is written. */
export async function openOutput(outDir: string, options: OutputOptions = {}): Promise<Output> {
  const store = new OutputStore(outDir, { durable: options.durable, env: options.env });
  const bucket = store.bucket;
  if (!bucket) {
    await checkWritableFolder(store.root);
    const ledger = new Ledger(store.root, { durable: options.durable });
    return { store, ledger, close: () => ledger.close() };
  }
  try {
    await bucket.check();
  } catch (error) {
    bucket.close();
    throw error;
  }
  const warn = options.warn ?? ((message: string) => void process.stderr.write(`warning: ${message}\n`));
  const shipper = new LedgerShipper(bucket, join(store.workDir, LEDGER_DIR), warn);
  const ledger: Ledger = new Ledger(store.workDir, {
    durable: options.durable,
    segments: {
      maxBytes: SEGMENT_BYTES,
      maxAgeMs: SEGMENT_MS,
      // Each rotation also tries again what could not be shipped before.
      ship: async (path) => {
        await shipper.ship(path);
        await shipper.shipLeftovers(ledger.path);
      },
    },
  });
  void shipper.shipLeftovers(ledger.path);
  return {
    store,
    ledger,
    async close() {
      await ledger.close();
      await shipper.shipLeftovers();
      await shipper.settle();
      bucket.close();
    },
  };
}

/**
 * A folder that cannot be made or written is said before any row is sent: a row's answer is
 * billed before its image is saved, and its ledger line goes to the same folder.
 */
async function checkWritableFolder(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
    await access(path, constants.W_OK);
  } catch (error) {
    throw new UsageError(`cannot write to the output folder ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}
