/**
 * The words of tokenhot-batch, used the same way in code, logs and the README.
 *
 * - row: one line of a prompt CSV, validated (`Row`). Its `id` names its outputs.
 * - batch: a named set of rows run together; outputs live in `<out>/<batch>/`.
 * - job: a row of a batch on the BullMQ queue (id `<batch>:<row id>`), or in the in-process runner.
 * - attempt: one call of the endpoint for a row. A 429 answer does not use one up.
 * - billed response: an answer the provider charges for (the provider says which: for Gemini any HTTP 200 with `usageMetadata`),
 *   including blocked prompts and answers without an image.
 * - ledger: append-only JSON Lines under `<out>/ledger/`, one line per billed response.
 * - price table: USD per million tokens per model, with optional start dates.
 * - sidecar: `<id>.json` beside a row's images: what was asked, what came back, what it cost.
 */

/** One validated row of a prompt CSV. This is also the data of a queue job (never image bytes). */
export interface Row {
  /** Unique within the file; names the outputs (`<id>.png`). Defaults to `row-` and the record number (`row-00001`). */
  id: string;
  /** Line of the CSV where the record starts (1 = header), for messages. */
  line: number;
  prompt: string;
  model: string;
  aspectRatio?: string;
  imageSize?: string;
  /** An exact size (`1536x1024`) or a size name (`auto`), for models of the images endpoint. */
  size?: string;
  /** `low`...`high`, `auto` (GPT Image), `standard` or `hd` (DALL·E 3). */
  quality?: string;
  /** Paths of reference images, resolved against the CSV's folder. */
  referenceImages: string[];
  tags: string[];
  /** Columns the tool does not know, kept as given. */
  metadata: Record<string, string>;
}

/** A row together with the batch it runs in. */
export interface BatchRow extends Row {
  batch: string;
  /**
   * Content hash (prompt, parameters, reference image bytes), set when a catalog job queued the
   * row: an image made for other content does not count as this row's image.
   */
  contentHash?: string;
}

/**
 * `usageMetadata` as the endpoint sent it; kept verbatim in the ledger and sidecars. Gateways
 * re-serialize it (a Go one writes an empty list as `null`), so any field may be null or missing.
 */
export interface UsageMetadata {
  promptTokenCount?: number | null;
  candidatesTokenCount?: number | null;
  thoughtsTokenCount?: number | null;
  toolUsePromptTokenCount?: number | null;
  cachedContentTokenCount?: number | null;
  totalTokenCount?: number | null;
  promptTokensDetails?: (ModalityTokenCount | null)[] | null;
  candidatesTokensDetails?: (ModalityTokenCount | null)[] | null;
  [field: string]: unknown;
}

export interface ModalityTokenCount {
  modality?: string | null;
  tokenCount?: number | null;
}

/** The token counts that the cost rule needs, taken from one `usageMetadata`. */
export interface TokenCounts {
  promptTokens: number;
  imageOutputTokens: number;
  /** candidates minus image output. */
  textOutputTokens: number;
  thoughtsTokens: number;
  totalTokens: number;
}

/** Tokens billed by kind, where the provider bills tokens. */
export interface BilledTokens {
  inputText: number;
  inputImage: number;
  outputText: number;
  outputImage: number;
  thinking: number;
  /** The total as the provider reported it, when it did (it may count kinds not listed here). */
  total?: number;
}

/**
 * What one billed answer is billed as, whatever its provider: the record the cost rule prices
 * (cost/billing.ts, cost/pricing.ts). A provider makes it from the usage it received.
 */
export interface BillingRecord {
  tokens?: BilledTokens;
  /** Images billed by the piece, with the unit their price is given for (`image`, `1024x1024/hd`). */
  images?: { count: number; unit: string };
}

/** How a row ended. */
export type RowStatus = 'done' | 'failed';

/** What one ledger line holds. */
export interface LedgerEntry {
  /** ISO time the response was complete. */
  ts: string;
  batch: string;
  rowId: string;
  model: string;
  /** Attempt number of the call (1-based; 429s do not count). */
  attempt: number;
  /** `done` when the response carried at least one final image, else `failed`. */
  outcome: RowStatus;
  finishReason?: string;
  blockReason?: string;
  images: number;
  tags: string[];
  /**
   * The row's product and shot (its metadata's `product` and `shot`: rows of a shot list, or a
   * CSV with those columns), for reports per product. Lines of earlier versions have none.
   */
  product?: string;
  shot?: string;
  /** The provider that answered (lines of earlier versions have none: Gemini). */
  provider?: string;
  /** What the answer is billed as (lines of earlier versions have none: read from usageMetadata). */
  billing?: BillingRecord;
  /** The usage as received: Gemini's `usageMetadata`, the OpenAI-style family's `usage`. */
  usageMetadata?: UsageMetadata;
  usage?: Record<string, unknown>;
  /** Which process wrote it, to tell duplicate work after a crash. */
  host: string;
  pid: number;
}

/**
 * Which rows a batch hands out (manifest, `latest/`): `all` (the default), or `approved`: only
 * rows whose current review decision is approved, so that nothing a person has not looked at is
 * published.
 */
export const DELIVER_CHOICES = ['approved', 'all'] as const;
export type Deliver = (typeof DELIVER_CHOICES)[number];
