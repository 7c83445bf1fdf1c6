/**
 * The one small interface between the pipeline and an image endpoint. `gemini/` implements
 * it; a second provider (the OpenAI-style `/v1/images/generations`) becomes a sibling folder.
 */
import type { BatchRow, TokenCounts, UsageMetadata } from '../core/types.js';

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
  usageMetadata: UsageMetadata;
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

export interface GenerateOptions {
  sink: ImageSink;
  signal?: AbortSignal;
}

export interface Provider {
  readonly name: string;
  /**
   * One call for one row. Returns every billed answer (an HTTP 200 whose body carries usage),
   * whatever else its body holds; throws `CallError` for anything else.
   */
  generate(row: BatchRow, options: GenerateOptions): Promise<ProviderAnswer>;
  /** The token counts the cost rule needs, read from this provider's usage record. */
  tokenCounts(usage: UsageMetadata): TokenCounts;
  close(): Promise<void>;
}
