/**
 * What the mock saw and answered, per request: the ground truth tests compare a client's
 * ledger and saved files against (billed usage, sha256 of final images, the bill at list price).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { UsageMetadata } from '../core/types.js';
import type { ApiFamily } from './directives.js';

/**
 * What an images-endpoint answer is billed for, in the shape of the product's BillingRecord:
 * tokens (GPT Image) or a count of images of a unit (`image` for Seedream, `SIZE/QUALITY` for
 * DALL-E, e.g. `1792x1024/hd`).
 */
export interface MockBilling {
  tokens?: { inputText: number; inputImage: number; outputText: number; outputImage: number; thinking: number; total: number };
  images?: { count: number; unit: string };
}

export interface MockImageRecord {
  mimeType: string;
  /** sha256 (hex) of the image bytes: decoded base64, or what its link serves. */
  sha256: string;
  bytes: number;
  /** Images endpoint: how the image was delivered. */
  delivery?: 'b64_json' | 'url';
  /** Images endpoint, links: the path served (`/__mock/files/<token>.<ext>`). */
  path?: string;
}

export interface MockRequestRecord {
  seq: number;
  /** Which endpoint was asked: `generateContent` (gemini) or `/v1/images/...` (openai-images). */
  family: ApiFamily;
  /** Epoch ms when the request arrived. */
  receivedAt: number;
  /** Epoch ms when the answer was handed to the socket (or cut). */
  answeredAt: number;
  model: string;
  prompt: string;
  /** HTTP status sent; 499 when the client left before the answer was ready (nothing sent). */
  status: number;
  /**
   * `refused`: the images endpoint's 400 refusal (not billed); `partial`: a Seedream group
   * answer with some `data[i].error` (billed for the images made).
   */
  kind: 'image' | 'blocked' | 'no-image' | 'rate-limited' | 'error' | 'cut' | 'refused' | 'partial';
  /** Exactly what was sent, when the answer was billed (every HTTP 200 that was fully sent). */
  usageMetadata?: UsageMetadata;
  /** Images endpoint: the `usage` object exactly as sent; absent when none was (DALL-E, errors). */
  usage?: Record<string, unknown>;
  /** Images endpoint, billed answers: what the bill is made of. */
  billing?: MockBilling;
  /** Images endpoint, billed answers: the bill at design.md's list prices, in micro-USD (exact). */
  listPriceMicroUsd?: number;
  /** Images endpoint: the `size` and `quality` in effect (defaults applied; `auto` resolved). */
  size?: string;
  quality?: string;
  /** FINAL images only. */
  images: MockImageRecord[];
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
