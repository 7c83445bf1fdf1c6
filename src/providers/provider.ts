/**
 * The one small interface between the pipeline and an image endpoint. `gemini/` and
 * `openai-images/` implement it; `router.ts` puts both behind it, each row going to its model's.
 */
import type { BillingRecord } from '../cost/billing.js';
import type { BatchRow, Row } from '../core/types.js';

/** An image written to a temporary file while the answer streamed in. */
export interface TempImage {
  tempPath: string;
  bytes: number;
}

export interface FinalImage extends TempImage {
  mimeType: string;
}

/** Where a provider writes image bytes as they arrive, so no image is ever held whole in memory. */
export interface ImageSink {
  open(): Promise<ImageFileWriter>;
}

export interface ImageFileWriter {
  write(bytes: Uint8Array): Promise<void>;
  /** Closes the temporary file (final images are flushed to disk later, see OutputStore.flushImages). */
  close(): Promise<TempImage>;
  /** Closes and removes the temporary file. */
  discard(): Promise<void>;
}

/** A billed answer, read. No image means the row failed for good (blocked or no image). */
export interface ProviderAnswer {
  /** Final images in answer order; temporary files the caller commits or discards. */
  images: FinalImage[];
  /** Non-thought text parts. */
  texts: string[];
  finishReason?: string;
  finishMessage?: string;
  blockReason?: string;
  /** The usage exactly as received, under the provider's own name for it; kept verbatim. */
  usage: ReceivedUsage;
  /** What the answer is billed as: what the cost rule prices. */
  billing: BillingRecord;
  modelVersion?: string;
  responseId?: string;
  /** The answer arrived (and is billed) but its images could not be saved here. */
  saveError?: unknown;
  /**
   * What the reader could not use in a billed answer that yielded no image (`candidates[0].content.parts
   * is null`, say): the row fails with it, once, and is never asked again in this run.
   */
  problem?: string;
}

/** The providers this version speaks to, by API family. */
export type ProviderName = 'gemini' | 'openai-images';

/**
 * Usage as the provider sent it, and the field name it is kept under in the ledger and sidecars:
 * Gemini's `usageMetadata`, the OpenAI-style `usage` (empty where an answer carries none).
 */
export interface ReceivedUsage {
  field: 'usageMetadata' | 'usage';
  value: Record<string, unknown>;
}

export interface GenerateOptions {
  sink: ImageSink;
  signal?: AbortSignal;
}

export interface Provider {
  readonly name: ProviderName;
  /**
   * One call for one row. Returns every billed answer (which answers are billed is the
   * provider's to say: for Gemini an HTTP 200 whose body carries usage), whatever else its body
   * holds; throws `CallError` for anything else.
   */
  generate(row: BatchRow, options: GenerateOptions): Promise<ProviderAnswer>;
  /**
   * The provider that answers `row`, for one that hands rows on (the router): its `name` is the
   * one the ledger and sidecar record. Absent: the provider answers every row itself.
   */
  providerFor?(row: Row): Provider;
  close(): Promise<void>;
}
