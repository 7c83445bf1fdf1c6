/**
 * The rows of a batch as review sees them: each finished row's sidecar (`<id>.json`) with its
 * current decision. Kept versions (`<id>.v1.json`) and other JSON files are not rows.
 */
import { opendir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sidecar } from '../../run/generate.js';
import { batchDecisions, batchFolder, stateOf, type ReviewLine, type ReviewState } from '../../output/reviews.js';

export interface ReviewRow {
  id: string;
  status: 'done' | 'failed';
  reason?: string;
  prompt: string;
  model: string;
  /** `metadata.shot`, for the report's approval rate by shot. */
  shot?: string;
  images: { file: string; mimeType: string }[];
  costUsd: number | null;
  review: ReviewState;
  /** The line that decided it, when reviewed. */
  decision?: ReviewLine;
  sidecar: Sidecar;
}

const byId = new Intl.Collator('en', { numeric: true });
const SIDECARS_IN_FLIGHT = 32;

/** Every row of the batch with a sidecar, sorted by id as people sort (`row-9` before `row-10`). */
export async function readReviewRows(out: string, batch: string): Promise<ReviewRow[]> {
  const folder = batchFolder(out, batch);
  const [sidecars, decisions] = await Promise.all([readRowSidecars(folder), batchDecisions(out, batch)]);
  return sidecars
    .map((sidecar) => rowOf(sidecar, decisions))
    .sort((a, b) => byId.compare(a.id, b.id));
}

function rowOf(sidecar: Sidecar, decisions: Map<string, ReviewLine>): ReviewRow {
  const decision = decisions.get(sidecar.id);
  const shot = sidecar.metadata?.shot;
  return {
    id: sidecar.id,
    status: sidecar.status,
    ...(sidecar.reason !== undefined ? { reason: sidecar.reason } : {}),
    prompt: sidecar.prompt,
    model: sidecar.parameters?.model ?? '',
    ...(typeof shot === 'string' && shot !== '' ? { shot } : {}),
    images: (sidecar.images ?? []).map((image) => ({ file: image.file, mimeType: image.mimeType })),
    costUsd: typeof sidecar.costUsd === 'number' ? sidecar.costUsd : null,
    review: stateOf(decisions, sidecar.id, sidecar.timings?.finishedAt),
    ...(decision ? { decision } : {}),
    sidecar,
  };
}

/** The sidecars of a folder: `<id>.json` files whose content names that id. */
async function readRowSidecars(folder: string): Promise<Sidecar[]> {
  let dir;
  try {
    dir = await opendir(folder, { bufferSize: 256 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const names: string[] = [];
  for await (const entry of dir) {
    if (entry.isFile() && entry.name.endsWith('.json') && !entry.name.startsWith('.')) names.push(entry.name);
  }
  const sidecars: Sidecar[] = [];
  // A few reads at once: a page of 3,000 rows is read in a fraction of the time one by one takes.
  for (let start = 0; start < names.length; start += SIDECARS_IN_FLIGHT) {
    const chunk = names.slice(start, start + SIDECARS_IN_FLIGHT);
    const read = await Promise.all(chunk.map((name) => readSidecarFile(join(folder, name))));
    read.forEach((sidecar, index) => {
      if (sidecar && `${sidecar.id}.json` === chunk[index]) sidecars.push(sidecar);
    });
  }
  return sidecars;
}

async function readSidecarFile(path: string): Promise<Sidecar | undefined> {
  try {
    const value = JSON.parse(await readFile(path, 'utf8')) as Partial<Sidecar>;
    if (typeof value?.id !== 'string' || (value.status !== 'done' && value.status !== 'failed') || typeof value.prompt !== 'string') return undefined;
    return value as Sidecar;
  } catch {
    // manifest.json, a file being written by hand: not a row.
    return undefined;
  }
}

/**
 * The batches of an output folder: its folders that hold a row, top-level ones and, for a folder
 * of sub-batches (a catalog job's firings, `<job>/<firing>`), the ones a level down.
 */
export async function batchesIn(out: string, depth = 2): Promise<string[]> {
  const names: string[] = [];
  let dir;
  try {
    dir = await opendir(out);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  for await (const entry of dir) {
    if (!entry.isDirectory() || entry.name.startsWith('.') || (depth === 2 && (entry.name === 'latest' || entry.name === 'ledger'))) continue;
    if ((await readRowSidecars(join(out, entry.name))).length > 0) names.push(entry.name);
    else if (depth > 1) names.push(...(await batchesIn(join(out, entry.name), depth - 1)).map((name) => `${entry.name}/${name}`));
  }
  return names.sort((a, b) => byId.compare(a, b));
}
