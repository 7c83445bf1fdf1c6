/**
 * A batch's manifest: the one file a team's sync reads to learn which image belongs to which
 * product and shot, and what it cost. Built from the sidecars alone (every settled row has one),
 * so the in-process runner and queue workers write the same manifest, and writing it again
 * later gives the same lines.
 *
 *   <out>/<batch>/manifest.csv    one line per row, sorted by product, then shot (then row id)
 *   <out>/<batch>/manifest.json   the same rows, files and photos as lists
 *
 * One line per row, not per image: a row with several images lists them `;`-joined in its
 * `file` cell (first image first), so that the cost column sums to the batch's cost. Source
 * photos are `;`-joined too, as `reference_images` are in a prompt CSV; the JSON has both as
 * lists. Cells that a spreadsheet would run as a formula start with `'`, as in cost reports.
 *
 * Rows are read one sidecar at a time (a few in flight) and kept as small records; both files are
 * written to a temporary file, then renamed into place (or uploaded, for a bucket: an object
 * appears whole), so a reader sees the old manifest or the new one, and writers that race (two
 * workers ending a batch) leave one whole.
 */
import { mkdir } from 'node:fs/promises';
import { MANIFEST_CSV, MANIFEST_JSON, type OutputStore } from './storage.js';
import { csvCell, csvDecimal } from './csv-cells.js';
import { batchDecisions, stateOf } from './reviews.js';
import type { Deliver } from '../core/types.js';

export { writeTextAtomic } from './storage.js';



export interface DeliverOptions {
  /** @default 'all' */
  deliver?: Deliver;
}

export { MANIFEST_CSV, MANIFEST_JSON };
/** How manifest.json starts, which no sidecar does: a row named `manifest` has its sidecar there. */
const JSON_MARKER = '{"manifest":"tokenhot-batch/1"';
const SIDECARS_IN_FLIGHT = 32;

export const MANIFEST_COLUMNS = ['product', 'shot', 'file', 'status', 'reason', 'model', 'cost_usd', 'source_photos', 'row_id', 'finished_at'] as const;

/** One row of a batch as the manifest lists it. */
export interface ManifestEntry {
  /** `metadata.product` (rows of a product feed), else the row id. */
  product: string;
  /** `metadata.shot`, else empty. */
  shot: string;
  /** The row's images, relative to the output folder, `/`-separated (`nightly/2026-11-30/mug--hero.png`). */
  files: string[];
  status: 'done' | 'failed';
  /** Why the row failed; empty when done. */
  reason: string;
  model: string;
  /** As in the sidecar; null when the model has no price. */
  costUsd: number | null;
  /** The reference images the row sent: photo URLs as the feed named them, or paths. */
  photos: string[];
  rowId: string;
  finishedAt: string;
}

export interface ManifestSummary {
  batch: string;
  csvPath: string;
  /** Undefined when manifest.json was not written (see `warnings`). */
  jsonPath: string | undefined;
  rows: number;
  done: number;
  failed: number;
  /** Sum of the priced rows' costs, to the picodollar. */
  costUsd: number;
  /** Rows whose model has no price (cost null). */
  unpriced: number;
  warnings: string[];
  /** The rows it lists, for `updateLatest` to place without reading the sidecars again. */
  entries: ManifestEntry[];
}

/** What the manifest reads of a sidecar (see `Sidecar` in run/generate.ts), read leniently. */
interface SidecarFields {
  id?: unknown;
  status?: unknown;
  reason?: unknown;
  parameters?: { model?: unknown; referenceImages?: unknown };
  metadata?: Record<string, unknown>;
  images?: { file?: unknown }[];
  costUsd?: unknown;
  timings?: { finishedAt?: unknown };
}

/** Writes `<out>/<batch>/manifest.csv` and `manifest.json` from the batch's sidecars. */
export async function writeManifest(store: OutputStore, batch: string, options: DeliverOptions = {}): Promise<ManifestSummary> {
  const entries = await readManifestEntries(store, batch, options);
  const summary = summarize(store, batch, entries);
  // A batch whose rows all failed before any sidecar (a model that does not exist) has no folder yet.
  await mkdir(store.batchDir(batch), { recursive: true });
  await store.writeText(store.nameOf(batch, MANIFEST_CSV), csvLines(entries));
  if (summary.jsonPath) await store.writeText(store.nameOf(batch, MANIFEST_JSON), jsonLines(batch, entries));
  return summary;
}

/** Every settled row of a batch, from its sidecar, sorted by product, shot and row id. */
export async function readManifestEntries(store: OutputStore, batch: string, options: DeliverOptions = {}): Promise<ManifestEntry[]> {
  const entries: ManifestEntry[] = [];
  let names: string[] = [];
  const readSome = async (): Promise<void> => {
    const read = await Promise.all(names.map((name) => readEntry(store, batch, name)));
    for (const entry of read) if (entry) entries.push(entry);
    names = [];
  };
  for await (const name of store.listBatch(batch)) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    names.push(name);
    if (names.length >= SIDECARS_IN_FLIGHT) await readSome();
  }
  await readSome();
  return (await delivered(store, batch, entries, options.deliver ?? 'all')).sort(byProductShotRow);
}

/** The entries `deliver` lets out (see `Deliver`); review files are read from the local output folder. */
async function delivered(store: OutputStore, batch: string, entries: ManifestEntry[], deliver: Deliver): Promise<ManifestEntry[]> {
  if (deliver === 'all') return entries;
  const decisions = await batchDecisions(store.root, batch);
  return entries.filter((entry) => stateOf(decisions, entry.rowId, entry.finishedAt || undefined) === 'approved');
}

/** The manifest's record of one `<id>.json`; undefined for a file that is not a finished row's sidecar. */
async function readEntry(store: OutputStore, batch: string, name: string): Promise<ManifestEntry | undefined> {
  const text = await store.readBatchText(batch, name);
  // Gone since listed (a row made again): not a finished row.
  if (text === undefined) return undefined;
  if (name === MANIFEST_JSON && text.startsWith(JSON_MARKER)) return undefined;
  let sidecar: SidecarFields;
  try {
    sidecar = JSON.parse(text) as SidecarFields;
  } catch (error) {
    // Not ours: not a finished row.
    if (error instanceof SyntaxError) return undefined;
    throw error;
  }
  if (typeof sidecar !== 'object' || sidecar === null) return undefined;
  const rowId = sidecar.id;
  if (typeof rowId !== 'string' || `${rowId}.json` !== name) return undefined;
  if (sidecar.status !== 'done' && sidecar.status !== 'failed') return undefined;
  return entryOf(batch, rowId, sidecar.status, sidecar);
}

function entryOf(batch: string, rowId: string, status: 'done' | 'failed', sidecar: SidecarFields): ManifestEntry {
  const metadata = sidecar.metadata ?? {};
  const text = (value: unknown): string => (typeof value === 'string' ? value : '');
  // The photos this row sent (a shot with `references: none` sent none), not all of its product's.
  const photos = stringsOf(sidecar.parameters?.referenceImages);
  const files = (Array.isArray(sidecar.images) ? sidecar.images : []).map((image) => image?.file).filter((file): file is string => typeof file === 'string');
  return {
    product: text(metadata.product) || rowId,
    shot: text(metadata.shot),
    files: files.map((file) => `${batch}/${file}`),
    status,
    reason: text(sidecar.reason),
    model: text(sidecar.parameters?.model),
    costUsd: typeof sidecar.costUsd === 'number' && Number.isFinite(sidecar.costUsd) ? sidecar.costUsd : null,
    photos,
    rowId,
    finishedAt: text(sidecar.timings?.finishedAt),
  };
}

function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/** Code-unit order: the same on every machine and locale. */
export function byProductShotRow(a: Pick<ManifestEntry, 'product' | 'shot' | 'rowId'>, b: Pick<ManifestEntry, 'product' | 'shot' | 'rowId'>): number {
  return compare(a.product, b.product) || compare(a.shot, b.shot) || compare(a.rowId, b.rowId);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function summarize(store: OutputStore, batch: string, entries: ManifestEntry[]): ManifestSummary {
  let costPico = 0n;
  let unpriced = 0;
  for (const entry of entries) {
    if (entry.costUsd === null) unpriced++;
    else costPico += BigInt(Math.round(entry.costUsd * 1e12));
  }
  const done = entries.filter((entry) => entry.status === 'done').length;
  // A row named `manifest` keeps its sidecar in manifest.json: overwriting it would make the row
  // run (and be billed) again. Such a batch gets the CSV only.
  const owner = entries.find((entry) => entry.rowId.toLowerCase() === 'manifest');
  const warnings = owner ? [`row "${owner.rowId}" has its sidecar at ${batch}/${owner.rowId}.json: ${MANIFEST_JSON} not written (rename the row to get it)`] : [];
  return {
    batch,
    csvPath: store.pathOf(batch, MANIFEST_CSV),
    jsonPath: owner ? undefined : store.pathOf(batch, MANIFEST_JSON),
    rows: entries.length,
    done,
    failed: entries.length - done,
    costUsd: Number(costPico) / 1e12,
    unpriced,
    warnings,
    entries,
  };
}

function* csvLines(entries: ManifestEntry[]): Generator<string> {
  yield `${MANIFEST_COLUMNS.join(',')}\n`;
  for (const entry of entries) {
    const cells = [entry.product, entry.shot, entry.files.join(';'), entry.status, entry.reason, entry.model, csvDecimal(entry.costUsd), entry.photos.join(';'), entry.rowId, entry.finishedAt];
    yield `${cells.map(csvCell).join(',')}\n`;
  }
}

function* jsonLines(batch: string, entries: ManifestEntry[]): Generator<string> {
  yield `${JSON_MARKER},"batch":${JSON.stringify(batch)},"writtenAt":${JSON.stringify(new Date().toISOString())},"rows":[`;
  for (const [index, entry] of entries.entries()) yield `${index === 0 ? '' : ','}\n${JSON.stringify(entry)}`;
  yield '\n]}\n';
}
