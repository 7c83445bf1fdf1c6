/**
 * The finished rows of a batch folder, from their sidecars: only the few fields the gallery
 * shows are kept, and a JSON file that is not a sidecar of this batch is reported, not shown.
 */
import { z } from 'zod';
import { tokenCountsOf, type BillingRecord } from '../cost/billing.js';
import { geminiBilling } from '../providers/gemini/usage.js';
import type { UsageMetadata } from '../core/types.js';
import type { GalleryRow } from './gallery-html.js';
import type { OutputStore } from '../output/storage.js';
import { sidecarRowId } from '../output/storage.js';

/**
 * The sidecar fields the page shows (the `Sidecar` type of run/generate.ts). Checked rather than
 * trusted: a JSON file in the folder that is not a sidecar, or one of another version, is
 * reported instead of breaking the page.
 */
const sidecarSchema = z.object({
  batch: z.string(),
  id: z.string().min(1),
  status: z.enum(['done', 'failed']),
  reason: z.string().optional(),
  prompt: z.string(),
  parameters: z.object({ model: z.string(), aspectRatio: z.string().optional(), imageSize: z.string().optional() }),
  tags: z.array(z.string()).default([]),
  images: z.array(z.object({ file: z.string(), mimeType: z.string(), bytes: z.number() })).default([]),
  texts: z.array(z.string()).default([]),
  usageMetadata: z.record(z.string(), z.unknown()).optional(),
  billing: z.looseObject({}).optional(),
  costUsd: z.number().nullable().optional(),
  attempt: z.number().default(1),
  timings: z.object({ finishedAt: z.string() }).partial().optional(),
});

/** Row ids sort as people expect (`row-9` before `row-10`), the same on every machine. */
export const collator = new Intl.Collator('en', { numeric: true });

/** The sidecars of a batch, a folder's or a bucket's, one listed name at a time. */
export async function readSidecars(store: OutputStore, batch: string, unreadable: string[]): Promise<GalleryRow[]> {
  const rows: GalleryRow[] = [];
  for await (const name of store.listBatch(batch)) {
    // Only files are listed: `.partial/` holds images being received; sub-batches are folders of
    // their own. A row's earlier versions (`<id>.v1.json`, kept by regenerate) are not rows.
    if (sidecarRowId(name) === undefined) continue;
    const row = await readSidecar(store, name, batch, unreadable);
    if (row) rows.push(row);
  }
  return rows.sort((a, b) => collator.compare(a.id, b.id));
}

async function readSidecar(store: OutputStore, name: string, batch: string, unreadable: string[]): Promise<GalleryRow | undefined> {
  let parsed: z.infer<typeof sidecarSchema>;
  try {
    const text = await store.readBatchText(batch, name);
    if (text === undefined) {
      unreadable.push(`${name}: gone while the page was made`);
      return undefined;
    }
    const result = sidecarSchema.safeParse(JSON.parse(text));
    if (!result.success) {
      unreadable.push(`${name}: not a sidecar (${result.error.issues[0]?.path.join('.') || 'value'}: ${result.error.issues[0]?.message})`);
      return undefined;
    }
    parsed = result.data;
  } catch (error) {
    unreadable.push(`${name}: ${(error as Error).message}`);
    return undefined;
  }
  // A sidecar names its batch and row; one that names others was copied here by hand.
  if (parsed.batch !== batch || `${parsed.id}.json` !== name) {
    unreadable.push(`${name}: belongs to batch "${parsed.batch}", row "${parsed.id}"; left out`);
    return undefined;
  }
  const billing = (parsed.billing as BillingRecord | undefined) ?? (parsed.usageMetadata ? geminiBilling(parsed.usageMetadata as UsageMetadata) : undefined);
  return {
    id: parsed.id,
    status: parsed.status,
    ...(parsed.reason !== undefined ? { reason: parsed.reason } : {}),
    prompt: parsed.prompt,
    model: parsed.parameters.model,
    ...(parsed.parameters.aspectRatio ? { aspectRatio: parsed.parameters.aspectRatio } : {}),
    ...(parsed.parameters.imageSize ? { imageSize: parsed.parameters.imageSize } : {}),
    tags: parsed.tags,
    images: parsed.images,
    texts: parsed.texts,
    ...(billing ? { tokens: tokenCountsOf(billing) } : {}),
    // costUsd is picoToUsd of an exact amount: back to picodollars exactly (12 decimals fit a double
    // for any cost of one answer). Absent when nothing was billed; null when the model had no price.
    costPico: billing === undefined ? undefined : typeof parsed.costUsd === 'number' ? BigInt(Math.round(parsed.costUsd * 1e12)) : null,
    attempt: parsed.attempt,
    ...(parsed.timings?.finishedAt ? { finishedAt: parsed.timings.finishedAt } : {}),
  };
}
