/**
 * Product photos named by URL (a feed's `Image Src`, a `reference_images` cell holding links),
 * fetched once and kept under the output folder (`<out>/.cache/photos/`), one file per URL with
 * what the server said identifies its version (ETag, Last-Modified). Each process asks the
 * server once per URL whether the photo changed (a conditional GET: 304 costs no bytes), so a
 * photo replaced at the shop is fetched again, and makes its rows' content hashes change, at the
 * next firing. Downloads are limited in size and time, never get the API key (links go to other
 * hosts), and must be images by their bytes. When the shop cannot be reached, the copy kept is
 * used; a photo that is gone (404) fails the rows that name it.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImageLinks, type Validators } from '../providers/image-link.js';
import { openTempImage } from '../output/storage.js';
import { readImageMime, type ImageMime } from './image-type.js';

/** Where the photos of an output folder are kept. */
export function photoCacheDir(outDir: string): string {
  return join(outDir, '.cache', 'photos');
}

import { isPhotoUrl } from './photo-url.js';

export { isPhotoUrl };

export interface CachedPhoto {
  url: string;
  /** The local copy, to read as any reference file. */
  path: string;
  bytes: number;
  mime: ImageMime;
  sha256: string;
}

export type PhotoResult = { ok: true; photo: CachedPhoto } | { ok: false; reason: string };

interface PhotoMeta extends Validators {
  url: string;
  bytes: number;
  mime: ImageMime;
  sha256: string;
  fetchedAt: string;
}

export interface PhotoCacheOptions {
  /** Largest photo taken. @default 20 MB */
  maxBytes?: number;
  /** Longest one download may take. @default 60000 */
  timeoutMs?: number;
  /** Downloads of one photo before giving up. @default 3 */
  attempts?: number;
  /** Kept out of every message. */
  apiKey?: string;
  /**
   * How long one look at the server holds for this process. @default Infinity (a firing or a
   * `run`: one look per URL); a long-running worker asks again after this.
   */
  freshForMs?: number;
}

export class PhotoCache {
  private readonly links: ImageLinks;
  /** One look at the server per URL (while fresh), however many rows and shots name the photo. */
  private readonly looked = new Map<string, { at: number; result: Promise<PhotoResult> }>();
  private readonly freshForMs: number;

  constructor(
    readonly dir: string,
    options: PhotoCacheOptions = {},
  ) {
    this.freshForMs = options.freshForMs ?? Number.POSITIVE_INFINITY;
    this.links = new ImageLinks({
      maxBytes: options.maxBytes ?? 20 * 1024 * 1024,
      timeoutMs: options.timeoutMs ?? 60_000,
      attempts: options.attempts ?? 3,
      baseDelayMs: 500,
      connections: 4,
      label: 'photo',
      goneHint: '',
      ...(options.apiKey ? { apiKey: options.apiKey } : {}),
    });
  }

  get(url: string): Promise<PhotoResult> {
    const looked = this.looked.get(url);
    if (looked && Date.now() - looked.at < this.freshForMs) return looked.result;
    const result = this.refresh(url);
    this.looked.set(url, { at: Date.now(), result });
    return result;
  }

  /** The row with its photos named by URL replaced by their local copies, or why one cannot be had. */
  async localize<R extends { referenceImages: string[] }>(row: R): Promise<{ row: R } | { failed: string }> {
    if (!row.referenceImages.some(isPhotoUrl)) return { row };
    const paths: string[] = [];
    for (const ref of row.referenceImages) {
      if (!isPhotoUrl(ref)) {
        paths.push(ref);
        continue;
      }
      const result = await this.get(ref);
      if (!result.ok) return { failed: `reference ${result.reason}` };
      paths.push(result.photo.path);
    }
    return { row: { ...row, referenceImages: paths } };
  }

  /** A photo's content for content hashes: its bytes' sha256, or its URL when it cannot be fetched (its rows fail with the reason). */
  contentHash = async (url: string): Promise<string> => {
    const result = await this.get(url);
    return result.ok ? result.photo.sha256 : `url:${url}`;
  };

  async close(): Promise<void> {
    await this.links.close();
  }

  private async refresh(url: string): Promise<PhotoResult> {
    const key = createHash('sha256').update(url).digest('hex').slice(0, 40);
    const metaPath = join(this.dir, `${key}.json`);
    const photoPath = join(this.dir, `${key}.photo`);
    const kept = await readMeta(metaPath, photoPath, url);
    await mkdir(this.dir, { recursive: true });
    const temp = join(this.dir, `${key}.${process.pid}.${Date.now().toString(36)}.partial`);
    const sink = { open: () => openTempImage(temp) };
    const answer = kept ? await this.links.fetchIfChanged(url, sink, kept) : await this.links.fetch(url, sink);
    if ('notModified' in answer) return { ok: true, photo: { url, path: photoPath, bytes: kept!.bytes, mime: kept!.mime, sha256: kept!.sha256 } };
    if ('image' in answer) {
      const meta = await describe(url, temp, answer.validators);
      // The photo first, then what describes it: a crash in between leaves a copy without
      // validators, fetched again next time.
      await rename(temp, photoPath);
      await writeFile(`${metaPath}.partial`, JSON.stringify(meta));
      await rename(`${metaPath}.partial`, metaPath);
      return { ok: true, photo: { url, path: photoPath, bytes: meta.bytes, mime: meta.mime, sha256: meta.sha256 } };
    }
    await rm(temp, { force: true });
    if ('saveError' in answer) return { ok: false, reason: `photo ${url} cannot be kept in ${this.dir} (${(answer.saveError as NodeJS.ErrnoException).code ?? String(answer.saveError)})` };
    // Gone is gone; a shop that cannot be reached right now leaves the copy kept in use.
    if (kept && !/is gone|is not an image|is over/.test(answer.failed)) return { ok: true, photo: { url, path: photoPath, bytes: kept.bytes, mime: kept.mime, sha256: kept.sha256 } };
    return { ok: false, reason: answer.failed };
  }
}

/** What was kept of `url`, if its photo is still there as described. */
async function readMeta(metaPath: string, photoPath: string, url: string): Promise<PhotoMeta | undefined> {
  try {
    const meta = JSON.parse(await readFile(metaPath, 'utf8')) as PhotoMeta;
    if (meta.url !== url || (await stat(photoPath)).size !== meta.bytes) return undefined;
    return meta;
  } catch {
    return undefined;
  }
}

async function describe(url: string, path: string, validators: Validators): Promise<PhotoMeta> {
  const digest = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path)) {
    digest.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  // ImageLinks took it only as an image by its bytes.
  const mime = (await readImageMime(path))!;
  return { url, bytes, mime, sha256: digest.digest('hex'), fetchedAt: new Date().toISOString(), ...validators };
}
