/**
 * What the mock saw and answered, per request: the ground truth tests compare a client's
 * ledger and saved files against (billed usage, sha256 of final images).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { UsageMetadata } from '../core/types.js';

export interface MockRequestRecord {
  seq: number;
  /** Epoch ms when the request arrived. */
  receivedAt: number;
  /** Epoch ms when the answer was handed to the socket (or cut). */
  answeredAt: number;
  model: string;
  prompt: string;
  /** HTTP status sent; 499 when the client left before the answer was ready (nothing sent). */
  status: number;
  kind: 'image' | 'blocked' | 'no-image' | 'rate-limited' | 'error' | 'cut';
  /** Exactly what was sent, when the answer was billed (every HTTP 200 that was fully sent). */
  usageMetadata?: UsageMetadata;
  /** FINAL images only; sha256 of the decoded bytes. */
  images: { mimeType: string; sha256: string; bytes: number }[];
  thoughtImages: number;
}

export class RequestLog {
  /** Kept in arrival (seq) order although answers finish out of order. */
  readonly records: MockRequestRecord[] = [];
  private readonly stream: WriteStream | undefined;

  constructor(path: string | undefined) {
    if (path) {
      this.stream = createWriteStream(path, { flags: 'a' });
      // A broken log must not take the endpoint down; say it once.
      this.stream.once('error', (error) => process.stderr.write(`mock request log ${path}: ${error.message}\n`));
    }
  }

  add(record: MockRequestRecord): void {
    let at = this.records.length;
    while (at > 0 && (this.records[at - 1] as MockRequestRecord).seq > record.seq) at--;
    this.records.splice(at, 0, record);
    if (this.stream?.writable) this.stream.write(`${JSON.stringify(record)}\n`);
  }

  /** Empties the list in place, so a caller holding `server.requests` sees the reset. */
  clear(): void {
    this.records.length = 0;
  }

  close(): Promise<void> {
    const stream = this.stream;
    if (!stream || stream.destroyed) return Promise.resolve();
    return new Promise((resolve) => stream.end(() => resolve()));
  }
}
