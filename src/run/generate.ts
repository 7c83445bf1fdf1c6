/**
 * One call for one row, the step both runners share: call → read the answer → ledger → save.
 *
 * Order matters for crashes: the ledger line is written as soon as a billed answer is read
 * (before anything else can fail), images are renamed into place next, and the sidecar comes
 * last, so its presence means the row is finished. A kill at any point leaves either a finished
 * row or one that runs again; never a half-written image, never a billed answer missing from
 * the ledger.
 */
import { hostname } from 'node:os';
import { CallError } from '../core/errors.js';
import type { Ledger } from '../output/ledger.js';
import type { BillingRecord } from '../cost/billing.js';
import { billedCostPico, picoToUsd, type PriceTable } from '../cost/pricing.js';
import type { Provider, ProviderAnswer, ProviderName } from '../providers/provider.js';
import type { OutputStore, SavedImage } from '../output/storage.js';
import type { BatchRow, LedgerEntry, Row, UsageMetadata } from '../core/types.js';
import type { PhotoCache } from '../rows/photo-cache.js';

export interface RowContext {
  provider: Provider;
  store: OutputStore;
  ledger: Ledger;
  prices: PriceTable;
  /** Where photos named by URL are fetched to before a row that names them is sent. */
  photos?: PhotoCache;
  /** Called with the cost of each billed answer, once it is in the ledger (budgets, progress). */
  onBilled?: (row: BatchRow, costPico: bigint) => void | Promise<void>;
}

export interface AttemptInfo {
  /** 1-based; 429s do not count. */
  attempt: number;
  signal?: AbortSignal;
}

/** How one attempt of a row ended; `billing` is there when its answer was billed. */
export type RowOutcome =
  | { status: 'done'; images: SavedImage[]; costPico?: bigint; billing: BillingRecord }
  | {
      status: 'failed';
      reason: string;
      costPico?: bigint;
      billing?: BillingRecord;
      /** HTTP status of a refused call (400, 404). */
      httpStatus?: number;
      /** The endpoint said it does not know the row's model. */
      modelNotFound?: boolean;
    };

/** What `<id>.json` holds. */
export interface Sidecar {
  batch: string;
  id: string;
  status: 'done' | 'failed';
  /** Why the row failed, for people. */
  reason?: string;
  prompt: string;
  parameters: { model: string; aspectRatio?: string; imageSize?: string; size?: string; quality?: string; referenceImages: string[] };
  tags: string[];
  metadata: Record<string, string>;
  images: SavedImage[];
  texts: string[];
  finishReason?: string;
  blockReason?: string;
  /** Which provider answered, and what its answer is billed as (rows of earlier versions have neither). */
  provider?: ProviderName;
  billing?: BillingRecord;
  /** The usage as received, under the provider's name for it (`usageMetadata` for Gemini). */
  usageMetadata?: UsageMetadata;
  usage?: Record<string, unknown>;
  /** Cost of the answer by the price table in force; null when the model has no price. */
  costUsd: number | null;
  attempt: number;
  timings: { startedAt: string; finishedAt: string; durationMs: number };
  /** The row's content hash, for rows queued by a catalog job. */
  contentHash?: string;
}

/**
 * Whether a row's sidecar settles it for a re-run: done, or failed on an answer that was billed
 * (blocked, no image), which would be billed again. A refusal that was not billed (a 400 or 404,
 * say) is tried again by a re-run: its cause is usually what the user fixed, and trying costs
 * nothing.
 */
export function settledBy(sidecar: Sidecar | undefined): 'done' | 'failed' | undefined {
  if (sidecar?.status === 'done') return 'done';
  if (sidecar?.status === 'failed' && (sidecar.billing !== undefined || sidecar.usageMetadata !== undefined)) return 'failed';
  return undefined;
}

/** What a run does with a row: the one rule of `run`, `run --dry-run` and `estimate --batch`. */
export type RowPlan =
  | 'run'
  /** Finished, as the file asks it now. */
  | 'done'
  /** Finished, but the file's prompt or parameters changed since (made again with --redo-changed). */
  | 'doneChanged'
  /** Failed on a billed answer (tried again with --retry-failed, or --redo-changed once edited). */
  | 'failed';

export function planRow(row: Row, sidecar: Sidecar | undefined, options: { retryFailed?: boolean; redoChanged?: boolean }): RowPlan {
  const settled = settledBy(sidecar);
  if (settled === undefined || sidecar === undefined) return 'run';
  const changed = !sameRequest(sidecar, row);
  // A row made again replaces its images and sidecar, as any re-run of a row does.
  if (changed && options.redoChanged) return 'run';
  if (settled === 'failed') return options.retryFailed ? 'run' : 'failed';
  return changed ? 'doneChanged' : 'done';
}

/** Whether a row's sidecar was made from the request the file's row asks for now. */
function sameRequest(sidecar: Sidecar, row: Row): boolean {
  const made = sidecar.parameters;
  return (
    sidecar.prompt === row.prompt &&
    made.model === row.model &&
    made.aspectRatio === row.aspectRatio &&
    made.imageSize === row.imageSize &&
    made.size === row.size &&
    made.quality === row.quality &&
    JSON.stringify(made.referenceImages) === JSON.stringify(row.referenceImages)
  );
}

/** The reason a billed answer without an image gives, in words. */
export function noImageReason(answer: ProviderAnswer): string {
  if (answer.blockReason) return `prompt blocked (${answer.blockReason})`;
  const said = (answer.texts.join(' ').trim() || answer.finishMessage?.trim() || '').slice(0, 200);
  // The images endpoint has no finish reasons: its problem says it all.
  const why = [answer.finishReason || !answer.problem ? `finishReason ${answer.finishReason ?? 'none'}` : undefined, answer.problem].filter(Boolean).join('; ');
  return `no image (${why})${said ? `: ${said}` : ''}`;
}

/** The row as sent: its photos named by URL read from the photo cache. A photo that cannot be had fails the row, unbilled. */
async function withLocalPhotos(row: BatchRow, photos: PhotoCache | undefined): Promise<BatchRow> {
  if (!photos) return row;
  const local = await photos.localize(row);
  if ('failed' in local) throw new CallError('rowFailed', local.failed);
  return local.row;
}

/**
 * Runs one attempt of a row. Returns the row's outcome when it is settled (done, or failed for
 * good); throws `CallError` of kind rateLimited, transient or fatal for the runner to act on.
 */
export async function generateRow(row: BatchRow, context: RowContext, info: AttemptInfo): Promise<RowOutcome> {
  const { store, ledger, prices } = context;
  // A router hands each row to its model's provider: the ledger and sidecar name that one.
  const provider = context.provider.providerFor?.(row) ?? context.provider;
  const startedAt = new Date();
  await store.sweepPartials(row.batch, row.id);

  let answer: ProviderAnswer;
  try {
    answer = await provider.generate(await withLocalPhotos(row, context.photos), { sink: store.imageSink(row.batch, row.id), signal: info.signal });
  } catch (error) {
    if (error instanceof CallError && error.kind === 'rowFailed') {
      await writeSidecar(context, row, info, startedAt, { status: 'failed', reason: error.message });
      return { status: 'failed', reason: error.message, ...(error.status ? { httpStatus: error.status } : {}), ...(error.modelNotFound ? { modelNotFound: true } : {}) };
    }
    throw error;
  }

  // Final images reach the disk before the ledger line, so that its outcome says whether they
  // are safe: a failed flush is an image that could not be saved, as a failed write is.
  if (answer.saveError === undefined && answer.images.length > 0) {
    try {
      await store.flushImages(answer.images);
    } catch (error) {
      await Promise.all(answer.images.map((image) => store.discardTemp(image.tempPath)));
      answer = { ...answer, images: [], saveError: error };
    }
  }

  const finishedAt = new Date();
  const price = prices.priceOf(row.model, finishedAt.toISOString());
  const cost = price ? billedCostPico(answer.billing, price) : undefined;
  const entry = ledgerEntryOf(row, provider.name, answer, info.attempt, finishedAt);
  try {
    await ledger.append(entry);
  } catch (error) {
    await Promise.all(answer.images.map((image) => store.discardTemp(image.tempPath)));
    // Retrying would bill again and record nothing again: no row may run without its ledger.
    throw new CallError('fatal', `cannot write the ledger ${ledger.path}: ${(error as Error).message}`, { cause: error });
  }
  // Spend is counted as soon as the answer is billed, even if saving its images fails next. It
  // is not waited for before saving: counting may wait on Redis, which may be gone, and a row
  // whose images and sidecar are on disk is never asked (and billed) again.
  const counted = cost === undefined ? undefined : settleLater(context.onBilled?.(row, cost));

  if (answer.saveError !== undefined) {
    // Billed and in the ledger, but not saved: the row is tried again (and billed again).
    await Promise.all(answer.images.map((image) => store.discardTemp(image.tempPath)));
    await counted?.();
    throw answer.saveError;
  }
  let outcome: RowOutcome;
  if (answer.images.length === 0) {
    const reason = noImageReason(answer);
    await writeSidecar(context, row, info, startedAt, { status: 'failed', reason, answer, cost });
    outcome = { status: 'failed', reason, costPico: cost, billing: answer.billing };
  } else {
    const images = await store.commitImages(row.batch, row.id, answer.images);
    await writeSidecar(context, row, info, startedAt, { status: 'done', answer, images, cost });
    outcome = { status: 'done', images, costPico: cost, billing: answer.billing };
  }
  await counted?.();
  return outcome;
}

/** The ledger line of a billed answer: the usage exactly as received, and what it is billed as. */
function ledgerEntryOf(row: BatchRow, provider: ProviderName, answer: ProviderAnswer, attempt: number, finishedAt: Date): LedgerEntry {
  return {
    ts: finishedAt.toISOString(),
    batch: row.batch,
    rowId: row.id,
    provider,
    model: row.model,
    attempt,
    outcome: answer.images.length > 0 && answer.saveError === undefined ? 'done' : 'failed',
    ...(answer.finishReason ? { finishReason: answer.finishReason } : {}),
    ...(answer.blockReason ? { blockReason: answer.blockReason } : {}),
    images: answer.images.length,
    tags: row.tags,
    // Only these two of the metadata: a line per billed answer stays small.
    ...ledgerLabel('product', row.metadata?.product),
    ...ledgerLabel('shot', row.metadata?.shot),
    billing: answer.billing,
    [answer.usage.field]: answer.usage.value,
    host: hostname(),
    pid: process.pid,
  };
}

/** `{product: "A1"}` for a metadata value that is not blank, else nothing (a CSV's empty cell). */
function ledgerLabel(field: 'product' | 'shot', value: string | undefined): Partial<Pick<LedgerEntry, 'product' | 'shot'>> {
  const text = typeof value === 'string' ? value.trim() : '';
  return text === '' ? {} : { [field]: text };
}

/** Lets `work` run on while a promise settles; the returned function waits for it (and throws its error). */
function settleLater(work: void | Promise<void> | undefined): () => Promise<void> {
  const settled = Promise.resolve(work).then(
    () => ({ error: undefined as unknown, failed: false }),
    (error: unknown) => ({ error, failed: true }),
  );
  return async () => {
    const { error, failed } = await settled;
    if (failed) throw error;
  };
}

async function writeSidecar(
  context: RowContext,
  row: BatchRow,
  info: AttemptInfo,
  startedAt: Date,
  result: { status: 'done' | 'failed'; reason?: string; answer?: ProviderAnswer; images?: SavedImage[]; cost?: bigint },
): Promise<void> {
  const finishedAt = new Date();
  const sidecar: Sidecar = {
    batch: row.batch,
    id: row.id,
    status: result.status,
    ...(result.reason ? { reason: result.reason } : {}),
    prompt: row.prompt,
    parameters: {
      model: row.model,
      ...(row.aspectRatio ? { aspectRatio: row.aspectRatio } : {}),
      ...(row.imageSize ? { imageSize: row.imageSize } : {}),
      ...(row.size ? { size: row.size } : {}),
      ...(row.quality ? { quality: row.quality } : {}),
      referenceImages: row.referenceImages,
    },
    tags: row.tags,
    metadata: row.metadata,
    images: result.images ?? [],
    texts: result.answer?.texts ?? [],
    ...(result.answer?.finishReason ? { finishReason: result.answer.finishReason } : {}),
    ...(result.answer?.blockReason ? { blockReason: result.answer.blockReason } : {}),
    ...(result.answer ? { provider: (context.provider.providerFor?.(row) ?? context.provider).name, billing: result.answer.billing, [result.answer.usage.field]: result.answer.usage.value } : {}),
    costUsd: result.answer ? (result.cost === undefined ? null : picoToUsd(result.cost)) : 0,
    attempt: info.attempt,
    timings: { startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString(), durationMs: finishedAt.getTime() - startedAt.getTime() },
    ...(row.contentHash ? { contentHash: row.contentHash } : {}),
  };
  await context.store.writeSidecar(row.batch, row.id, sidecar);
  // The row is settled: the batch's `.partial/` folder goes when nothing is left in it (a writer
  // that races this re-creates it).
  await context.store.tidyPartials(row.batch);
}
