/**
 * A catalog job's `latest/` view: one folder that always holds the newest finished image of each
 * product and shot, whichever firing made it, so a team's sync has one place to read.
 *
 *   <out>/latest/<job>/<product>--<shot>.<ext>   named as the row's images are in its batch
 *                                                (`<product>.<ext>` for rows without shot,
 *                                                `<id>-2.<ext>` for a second image)
 *   <out>/latest/<job>/manifest.json             what the folder holds, and from which batch
 *
 * Links, copies where the file system refuses links: each image is a hard link to the batch's
 * file (no second copy of the bytes), or a copy when linking fails (the view on another file
 * system: EXDEV; one without hard links). A hard link shares its bytes with the batch's image:
 * edit neither in place. Each file is linked (or copied) to a hidden temporary name and renamed
 * over the old one, so a reader sees the old image or the new one, never none.
 *
 * In a bucket the view is objects under `<prefix>/latest/<job>/`, each a server-side copy of the
 * batch's image (S3 has no links; a copy is one request and no bytes through this process), put
 * in one step, so a reader sees the old image or the new one there too.
 *
 * A firing's failed rows leave the earlier image in place; an image older than the one the view
 * holds (a firing's view updated after a later one's) is not put back. A new image of another
 * type removes the old one (`mug--hero.jpg` after `mug--hero.png`). What the view holds is known
 * from its manifest.json, which is written last.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, link, mkdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { byProductShotRow, MANIFEST_JSON, readManifestEntries, writeTextAtomic, type DeliverOptions, type ManifestEntry } from './manifest.js';
import type { S3Bucket } from './s3-bucket.js';
import { checkBatchName, type OutputStore } from './storage.js';

export const LATEST_DIR = 'latest';
const LINKS_IN_FLIGHT = 16;
/** Errors of `link` that mean "this file system will not link here": copy instead. */
const LINK_REFUSED = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'ENOSYS']);

/** One product and shot in the view. */
export interface LatestEntry {
  product: string;
  shot: string;
  rowId: string;
  /** File names in the view's folder. */
  files: string[];
  /** The batch that made them, and their paths there, relative to the output folder. */
  batch: string;
  sources: string[];
  model: string;
  costUsd: number | null;
  photos: string[];
  finishedAt: string;
}

export interface LatestSummary {
  job: string;
  dir: string;
  /** Products and shots whose image this batch put in the view. */
  updated: number;
  /** Finished rows of the batch whose images the view already held (the same batch's view made again). */
  unchanged: number;
  /** Of those, how many were copied instead of linked. */
  copied: number;
  /** Finished rows of the batch whose product and shot the view holds a newer image of. */
  keptNewer: number;
  /** Finished rows whose image is no longer in the batch folder (the view keeps what it had). */
  missing: number;
  /** Products and shots in the view. */
  entries: number;
}

/**
 * Puts the batch's finished images in `<out>/latest/<job>/` where they are the newest of their
 * product and shot; with `deliver: 'approved'`, only the approved ones (manifest.ts `Deliver`).
 * `entries`: the rows the batch's manifest was just written from (`ManifestSummary.entries`),
 * so that its sidecars are not read a second time; read here when not given.
 */
export async function updateLatest(store: OutputStore, job: string, batch: string, options: DeliverOptions & { entries?: ManifestEntry[] } = {}): Promise<LatestSummary> {
  const view = viewOf(store, job);
  await view.prepare();
  const held = await readLatest(view);
  const summary: LatestSummary = { job, dir: view.dir, updated: 0, unchanged: 0, copied: 0, keptNewer: 0, missing: 0, entries: 0 };
  const finished = (options.entries ?? (await readManifestEntries(store, batch, options))).filter((entry) => entry.status === 'done' && entry.files.length > 0);
  for (let start = 0; start < finished.length; start += LINKS_IN_FLIGHT) {
    await Promise.all(finished.slice(start, start + LINKS_IN_FLIGHT).map((entry) => placeEntry(view, batch, entry, held, summary)));
  }
  summary.entries = held.size;
  await view.write(MANIFEST_JSON, latestJson(job, held));
  return summary;
}

/** `<out>/latest/<job>`; the job's name is one safe path part (a catalog job's name is). */
export function latestDir(store: OutputStore, job: string): string {
  const problem = job.includes('/') ? `job name "${job}" must be one name, without "/"` : checkBatchName(job);
  if (problem) throw new Error(problem);
  return store.files.locate(`${LATEST_DIR}/${job}`);
}

/** Where a job's view is kept: what `updateLatest` does to files, in a folder or a bucket. */
interface LatestView {
  /** The view's folder or `s3://` prefix, for messages. */
  dir: string;
  prepare(): Promise<void>;
  readText(file: string): Promise<string | undefined>;
  /** Puts a copy of `source` (a name in the output: `<batch>/<file>`) in the view as `file`. */
  place(source: string, file: string): Promise<PlaceResult>;
  remove(file: string): Promise<void>;
  write(file: string, pieces: Iterable<string>): Promise<void>;
}

function viewOf(store: OutputStore, job: string): LatestView {
  const dir = latestDir(store, job);
  return store.bucket ? bucketView(store, store.bucket, `${LATEST_DIR}/${job}`, dir) : folderView(store, dir);
}

/** Hard links (copies where refused) and files renamed into place, in the output folder. */
function folderView(store: OutputStore, dir: string): LatestView {
  return {
    dir,
    prepare: async () => void (await mkdir(dir, { recursive: true })),
    readText: (file) => readText(join(dir, file)),
    place: (source, file) => placeFile(store.files.locate(source), join(dir, file)),
    remove: (file) => removeFile(join(dir, file)),
    write: (file, pieces) => writeTextAtomic(join(dir, file), pieces),
  };
}

/** Server-side copies in the bucket. */
function bucketView(store: OutputStore, bucket: S3Bucket, name: string, dir: string): LatestView {
  return {
    dir,
    prepare: async () => undefined,
    readText: (file) => bucket.readText(`${name}/${file}`),
    place: async (source, file) => ((await bucket.copy(source, `${name}/${file}`)) ? 'copied' : 'missing'),
    remove: (file) => bucket.remove(`${name}/${file}`),
    write: (file, pieces) => store.writeText(`${name}/${file}`, pieces),
  };
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** What the view holds, by product and shot, from its manifest.json (none yet: empty). */
async function readLatest(view: LatestView): Promise<Map<string, LatestEntry>> {
  const text = await view.readText(MANIFEST_JSON);
  if (text === undefined) return new Map();
  const entries = (JSON.parse(text) as { entries?: LatestEntry[] }).entries ?? [];
  return new Map(entries.map((entry) => [keyOf(entry), entry]));
}

function keyOf(entry: Pick<LatestEntry, 'product' | 'shot'>): string {
  return `${entry.product}\u0000${entry.shot}`;
}

/** One finished row: its images linked into the view unless the view holds a newer one. */
async function placeEntry(view: LatestView, batch: string, entry: ManifestEntry, held: Map<string, LatestEntry>, summary: LatestSummary): Promise<void> {
  const earlier = held.get(keyOf(entry));
  // ISO times of one format compare as strings.
  if (earlier && earlier.finishedAt > entry.finishedAt) {
    summary.keptNewer++;
    return;
  }
  const files = entry.files.map((file) => basename(file));
  const placed: PlaceResult[] = [];
  for (const [index, file] of entry.files.entries()) {
    placed.push(await view.place(file, files[index]!));
    if (placed.at(-1) === 'missing') {
      summary.missing++;
      return;
    }
  }
  const stale = (earlier?.files ?? []).filter((file) => !files.includes(file));
  await Promise.all(stale.map((file) => view.remove(basename(file))));
  held.set(keyOf(entry), { product: entry.product, shot: entry.shot, rowId: entry.rowId, files, batch, sources: entry.files, model: entry.model, costUsd: entry.costUsd, photos: entry.photos, finishedAt: entry.finishedAt });
  if (stale.length === 0 && placed.every((how) => how === 'same')) summary.unchanged++;
  else summary.updated++;
  if (placed.includes('copied')) summary.copied++;
}

type PlaceResult = 'linked' | 'copied' | 'same' | 'missing';

/**
 * Puts `source` at `target` through a hidden temporary name: a hard link, or a copy where the
 * file system refuses one. Nothing to do when `target` is already a link to `source`.
 */
async function placeFile(source: string, target: string): Promise<PlaceResult> {
  const [from, to] = await Promise.all([stat(source).catch(() => undefined), stat(target).catch(() => undefined)]);
  if (!from) return 'missing';
  if (to && to.ino === from.ino && to.dev === from.dev) return 'same';
  const temp = join(dirname(target), `.${basename(target)}.${randomBytes(4).toString('hex')}.tmp`);
  let how: 'linked' | 'copied' = 'linked';
  try {
    try {
      await link(source, temp);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (code === 'ENOENT') return 'missing';
      if (!LINK_REFUSED.has(code)) throw error;
      await copyFile(source, temp);
      how = 'copied';
    }
    await rename(temp, target);
    return how;
  } finally {
    // Renaming a link onto another link of the same file does nothing and leaves the temporary
    // name (POSIX): a race the check above cannot rule out. Gone already in every other case.
    await removeFile(temp);
  }
}

async function removeFile(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

function* latestJson(job: string, held: Map<string, LatestEntry>): Generator<string> {
  const entries = [...held.values()].sort(byProductShotRow);
  yield `{"job":${JSON.stringify(job)},"writtenAt":${JSON.stringify(new Date().toISOString())},"entries":[`;
  for (const [index, entry] of entries.entries()) yield `${index === 0 ? '' : ','}\n${JSON.stringify(entry)}`;
  yield '\n]}\n';
}
