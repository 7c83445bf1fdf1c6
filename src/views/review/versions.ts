/**
 * Keeping a row's image(s) and sidecar before it is made again: `<id>.png` → `<id>.v1.png`,
 * `<id>.json` → `<id>.v1.json` (v2, ... when v1 is taken), the kept sidecar naming its kept images.
 * A `regenerated` review line then marks the new image unreviewed; the old lines stay. A row
 * that was not made after all (the run stopped before it) gets its version back.
 */
import { access, rename, unlink, writeFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { appendReview, batchFolder, reviewerName } from '../../output/reviews.js';
import type { ReviewRow } from './rows.js';

/** `cats-1.png` → `cats-1.v2.png`. */
function versionedName(file: string, version: number): string {
  const ext = extname(file);
  return `${file.slice(0, file.length - ext.length)}.v${version}${ext}`;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The first version number not yet taken by a kept sidecar of the row. */
async function nextVersion(folder: string, rowId: string): Promise<number> {
  let version = 1;
  while (await exists(join(folder, `${rowId}.v${version}.json`))) version++;
  return version;
}

/** Keeps the row's files as its next version; returns the version. */
export async function keepAsVersion(out: string, batch: string, row: ReviewRow): Promise<number> {
  const folder = batchFolder(out, batch);
  const version = await nextVersion(folder, row.id);
  const images = [];
  for (const image of row.sidecar.images ?? []) {
    const kept = versionedName(image.file, version);
    await rename(join(folder, image.file), join(folder, kept)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    images.push({ ...image, file: kept });
  }
  // The kept sidecar first, then the row's own goes: a crash between leaves both, never neither.
  await writeFile(join(folder, `${row.id}.v${version}.json`), `${JSON.stringify({ ...row.sidecar, images }, null, 2)}\n`, 'utf8');
  await unlink(join(folder, `${row.id}.json`));
  await appendReview(out, batch, { rowId: row.id, decision: 'regenerated', version, note: `kept as ${row.id}.v${version}`, who: reviewerName() });
  return version;
}

/**
 * Puts a kept version back when the row was not made again (no new sidecar: the run stopped
 * first), and its decision with it, so that a later `regenerate` finds it again.
 */
export async function restoreIfNotMade(out: string, batch: string, row: ReviewRow, version: number): Promise<boolean> {
  const folder = batchFolder(out, batch);
  if (await exists(join(folder, `${row.id}.json`))) return false;
  for (const image of row.sidecar.images ?? []) {
    await rename(join(folder, versionedName(image.file, version)), join(folder, image.file)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }
  await writeFile(join(folder, `${row.id}.json`), `${JSON.stringify(row.sidecar, null, 2)}\n`, 'utf8');
  await unlink(join(folder, `${row.id}.v${version}.json`));
  const decision = row.decision;
  if (decision && decision.decision !== 'regenerated') {
    await appendReview(out, batch, { rowId: row.id, decision: decision.decision, ...(decision.note !== undefined ? { note: decision.note } : {}), who: decision.who });
  }
  return true;
}
