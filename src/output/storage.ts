/**
 * Everything written as output goes through here: images and sidecars, always written to a
 * temporary file first and then put in place whole (renamed into the output folder, or uploaded
 * to the bucket), so a crash or a kill never leaves a half-written file where an image should be.
 * Output names are decided here and nowhere else.
 *
 * Layout (a bucket's object keys are the same names under its prefix):
 *   <out>/<batch>/<id>.<ext>         the final image (`<id>-2.<ext>` for a second one)
 *   <out>/<batch>/<id>.json          the sidecar, written last: its presence means "finished"
 * and on the local disk (the output folder itself, or for a bucket this machine's spool folder):
 *   <local>/<batch>/.partial/        images being received and sidecars being written
 *                                    (`<id>~<token>.*`, removed when their row ends)
 *   <local>/<batch>/.run-lock        held by the in-process `run` of the batch
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { FinalImage, ImageFileWriter, ImageSink, TempImage } from '../providers/provider.js';
import { UsageError } from '../core/errors.js';
import { isBucketUrl, outputLocation, spoolDirOf, type BucketLocation } from './location.js';
import { LocalFolder, type OutputFiles } from './output-files.js';
import { processAlive } from './host-processes.js';
import { S3Bucket } from './s3-bucket.js';

const PARTIAL_DIR = '.partial';
const RUN_LOCK = '.run-lock';
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$/;
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,160}$/;

/** Batch names may have `/`-separated parts (`catalog/2026-11-24`); each part is a safe name. */
export function checkBatchName(batch: string): string | undefined {
  const parts = batch.split('/');
  if (parts.length > 4) return `batch name "${batch}" has more than 4 parts`;
  for (const part of parts) {
    if (!SEGMENT.test(part) || part.includes('..')) {
      return `batch name "${batch}" must be made of letters, digits, ".", "_" and "-" (parts separated by "/")`;
    }
  }
  return undefined;
}

/** File extension for an image MIME type. */
export function extensionFor(mimeType: string): string {
  switch (mimeType.toLowerCase()) {
    case 'image/jpeg':
    case 'image/jpg':
      return 'jpg';
    case 'image/png':
      return 'png';
    case 'image/webp':
      return 'webp';
    case 'image/gif':
      return 'gif';
    case 'image/heic':
      return 'heic';
    case 'image/heif':
      return 'heif';
    default:
      return 'bin';
  }
}

/** `<id>.<ext>` for the first image, `<id>-2.<ext>` for the second, and so on. */
export function imageFileName(rowId: string, index: number, mimeType: string): string {
  return `${index === 0 ? rowId : `${rowId}-${index + 1}`}.${extensionFor(mimeType)}`;
}

export function sidecarFileName(rowId: string): string {
  return `${rowId}.json`;
}

/** The batch's manifest files, beside the sidecars (the row id `manifest` is refused for that). */
export const MANIFEST_CSV = 'manifest.csv';
export const MANIFEST_JSON = 'manifest.json';

/**
 * The row whose sidecar a batch folder's file is, or undefined: not the manifest, nor a row's
 * earlier version kept by regenerate (`<id>.v1.json`).
 */
export function sidecarRowId(file: string): string | undefined {
  if (!file.endsWith('.json') || file === MANIFEST_JSON || /\.v\d+\.json$/.test(file)) return undefined;
  return file.slice(0, -'.json'.length);
}

export interface SavedImage {
  /** File name inside the batch folder. */
  file: string;
  mimeType: string;
  bytes: number;
}

export class OutputStore {
  /** The output as given: an absolute folder, or `s3://bucket/prefix`. */
  readonly root: string;
  /**
   * The local folder of temporary files and run locks: the output folder itself, or for a
   * bucket this machine's spool folder (see location.ts).
   */
  readonly workDir: string;
  /** Where finished files live. */
  readonly files: OutputFiles;
  /** The bucket, for an `s3://` output. */
  readonly bucket?: S3Bucket;
  /** Flush files to disk before renaming them into place (survives a power cut, not just a kill). */
  private readonly durable: boolean;
  /** Batches this store wrote a sidecar of (kept for a bucket only: see `lockBatch`). */
  private readonly settledHere = new Set<string>();

  constructor(root: string, options: { durable?: boolean; env?: NodeJS.ProcessEnv } = {}) {
    if (isBucketUrl(root)) {
      const location = outputLocation(root) as BucketLocation;
      this.root = location.url;
      this.workDir = spoolDirOf(location, options.env);
      this.bucket = new S3Bucket(location, options.env);
      this.files = this.bucket;
      // Temporary files are uploaded, not renamed into place: the bucket keeps them, not this disk.
      this.durable = false;
    } else {
      this.root = resolve(root);
      this.workDir = this.root;
      this.files = new LocalFolder(this.root);
      this.durable = options.durable ?? true;
    }
  }

  /**
   * The local folder of a batch (its images, for a folder output; its temporary files, for a
   * bucket); refuses any name that could leave the output.
   */
  batchDir(batch: string): string {
    const problem = checkBatchName(batch);
    if (problem) throw new Error(problem);
    const dir = resolve(this.workDir, batch);
    const rel = relative(this.workDir, dir);
    if (rel.startsWith('..') || isAbsolute(rel)) throw new Error(`batch "${batch}" leaves the output folder`);
    return dir;
  }

  /** A file's name in the output (`<batch>/<file>`); refuses unsafe names. */
  nameOf(batch: string, file: string): string {
    if (!FILE_NAME.test(file) || file.includes('..')) throw new Error(`unsafe output name "${file}"`);
    this.batchDir(batch);
    return `${batch}/${file}`;
  }

  /** The names of the files of a batch (none when it has none yet). */
  listBatch(batch: string): AsyncGenerator<string> {
    this.batchDir(batch);
    return this.files.listFolder(batch);
  }

  /** A file of a batch as text (a name `listBatch` gave), or undefined when it is not there. */
  readBatchText(batch: string, file: string): Promise<string | undefined> {
    this.batchDir(batch);
    return this.files.readText(`${batch}/${file}`);
  }

  /** Where a finished file of a batch is: a path, or an `s3://` URL. */
  pathOf(batch: string, file: string): string {
    return this.files.locate(this.nameOf(batch, file));
  }

  /** A sink that writes a row's images to temporary files in the batch's `.partial/` folder. */
  imageSink(batch: string, rowId: string): ImageSink {
    const dir = join(this.batchDir(batch), PARTIAL_DIR);
    const token = `${process.pid.toString(36)}${randomBytes(4).toString('hex')}`;
    let count = 0;
    return {
      open: async () => {
        // `~` cannot be in a row id: row `x` sweeping `x~*` never touches row `x.y`'s files.
        const path = join(dir, `${rowId}~${token}.${count++}`);
        return openTempImage(path);
      },
    };
  }

  /**
   * Flushes a row's final images to disk (durable stores; others do nothing). Not done when a
   * temporary file is closed, because only once the whole answer is read is it known which
   * images are final: thought images are written too, removed moments later, and never flushed.
   */
  async flushImages(images: FinalImage[]): Promise<void> {
    if (this.durable) await Promise.all(images.map((image) => syncFile(image.tempPath)));
  }

  /**
   * Puts a row's final images in place (renamed, or uploaded), replacing all earlier ones: a row
   * made again (a changed catalog row) also loses the earlier images no new one overwrote
   * (another type, or one image where there were two). They are known from the sidecar, which is
   * written after this, so a crash in between leaves them listed for the next attempt.
   */
  async commitImages(batch: string, rowId: string, images: FinalImage[]): Promise<SavedImage[]> {
    const earlier = (await this.readSidecar<{ images?: { file?: unknown }[] }>(batch, rowId))?.images ?? [];
    const saved: SavedImage[] = [];
    for (const [index, image] of images.entries()) {
      const file = imageFileName(rowId, index, image.mimeType);
      await this.files.moveIn(image.tempPath, this.nameOf(batch, file), image.mimeType);
      saved.push({ file, mimeType: image.mimeType, bytes: image.bytes });
    }
    const kept = new Set(saved.map((image) => image.file));
    const ours = (file: unknown): file is string =>
      typeof file === 'string' && FILE_NAME.test(file) && (file.startsWith(`${rowId}.`) || file.startsWith(`${rowId}-`)) && !file.endsWith('.json');
    const stale = earlier.map((image) => image.file).filter((file): file is string => ours(file) && !kept.has(file));
    await Promise.all(stale.map((file) => this.files.remove(this.nameOf(batch, file))));
    return saved;
  }

  async discardTemp(tempPath: string): Promise<void> {
    await removeFile(tempPath);
  }

  /** Removes temporary files a row left behind (an earlier attempt cut short, a killed process). */
  async sweepPartials(batch: string, rowId: string): Promise<void> {
    const dir = join(this.batchDir(batch), PARTIAL_DIR);
    const names = await readdir(dir).catch(() => [] as string[]);
    const prefix = `${rowId}~`;
    await Promise.all(names.filter((name) => name.startsWith(prefix)).map((name) => removeFile(join(dir, name))));
  }

  /** Removes every temporary file of a batch; only when no call of the batch is in flight. */
  async sweepAllPartials(batch: string): Promise<void> {
    const dir = join(this.batchDir(batch), PARTIAL_DIR);
    await rm(dir, { recursive: true, force: true });
  }

  /**
   * Takes the batch's run lock, so that two in-process runs of one batch (a cron job that
   * overlaps itself, say) cannot run and bill the same rows twice, or sweep each other's
   * temporary files. A lock left by a process of this host that is gone is taken over; one held
   * by another host is for a person to judge, and the error says where it is.
   */
  async lockBatch(batch: string): Promise<{ release(): Promise<void> }> {
    const path = join(this.batchDir(batch), RUN_LOCK);
    const mine = `${JSON.stringify({ host: hostname(), pid: process.pid, since: new Date().toISOString() })}\n`;
    for (let tries = 0; ; tries++) {
      try {
        const handle = await openCreating(path, 'wx');
        try {
          await handle.writeFile(mine);
        } finally {
          await handle.close();
        }
        return {
          release: async () => {
            await removeFile(path);
            // A run that made nothing (a refused key, say) leaves no empty batch folder behind.
            // A bucket's rows leave nothing in the spool's folder: it is kept when a row settled,
            // as a folder output's is by its files, for those who ask whether the batch has any.
            if (!this.settledHere.has(batch)) await rmdir(dirname(path)).catch(() => undefined);
          },
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = await readFile(path, 'utf8')
        .then((text) => JSON.parse(text) as { host?: string; pid?: number; since?: string })
        .catch(() => undefined);
      const gone = holder?.host === hostname() && typeof holder.pid === 'number' && !processAlive(holder.pid);
      if (gone && tries < 2) {
        await removeFile(path);
        continue;
      }
      const who = holder ? `process ${holder.pid} on ${holder.host} since ${holder.since}` : 'another run';
      throw new UsageError(`batch ${batch} is being run by ${who}; wait for it to end, or remove ${path} if that run is gone`);
    }
  }

  /** Removes the batch's `.partial/` folder if it is empty (ignored when it is not). */
  async tidyPartials(batch: string): Promise<void> {
    await rmdir(join(this.batchDir(batch), PARTIAL_DIR)).catch(() => undefined);
  }

  async writeSidecar(batch: string, rowId: string, sidecar: unknown): Promise<void> {
    // Its temporary file is one of the row's in `.partial/`, so a kill mid-write leaves it where
    // the row's next attempt (or the end of a run) sweeps it.
    const temp = join(this.batchDir(batch), PARTIAL_DIR, `${rowId}~${randomBytes(4).toString('hex')}.json`);
    await this.writeWhole(this.nameOf(batch, sidecarFileName(rowId)), `${JSON.stringify(sidecar, null, 2)}\n`, temp);
    if (this.bucket) this.settledHere.add(batch);
  }

  async readSidecar<T>(batch: string, rowId: string): Promise<T | undefined> {
    const text = await this.files.readText(this.nameOf(batch, sidecarFileName(rowId)));
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      // A sidecar that cannot be read does not count as finished: the row runs again.
      if (error instanceof SyntaxError) return undefined;
      throw error;
    }
  }

  /**
   * Writes a whole text file (a manifest) from pieces: through a temporary file beside it and a
   * rename in a folder (`writeTextAtomic`), or a temporary file in the spool, uploaded.
   */
  async writeText(name: string, pieces: Iterable<string>): Promise<void> {
    if (!this.bucket) return writeTextAtomic(this.files.locate(name), pieces);
    const local = join(this.workDir, name);
    const temp = join(dirname(local), `.${basename(local)}.${randomBytes(4).toString('hex')}.tmp`);
    await mkdir(dirname(temp), { recursive: true });
    try {
      await writePieces(temp, pieces, false);
      await this.files.moveIn(temp, name);
    } catch (error) {
      await removeFile(temp);
      throw error;
    }
  }

  /** Writes a whole file through a local temporary file (`temp`), then puts it in place. */
  private async writeWhole(name: string, data: string | Uint8Array, temp: string): Promise<void> {
    const handle = await openCreating(temp);
    try {
      await handle.writeFile(data);
      if (this.durable) await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await this.files.moveIn(temp, name);
    } catch (error) {
      await removeFile(temp);
      throw error;
    }
  }
}

/** Removes a file, already gone or not (`rm` would lstat it first: one more thread-pool trip). */
async function removeFile(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Flushes a closed file's data to disk (fsync applies to the file, whichever descriptor asks). */
async function syncFile(path: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r+');
  } catch (error) {
    // Gone: another worker took the row over (its lock had expired) and swept what this attempt
    // left. Nothing of ours to flush; renaming it into place fails next and says so, as it did
    // when the flush came with the write.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Opens a new file for writing, making its folder when it is missing. The folder nearly always
 * exists, so it is made only when the open says it does not; another process may remove an empty
 * `.partial/` folder between our mkdir and open, hence the retries.
 */
async function openCreating(path: string, flags: 'w' | 'wx' = 'w'): Promise<FileHandle> {
  for (let tries = 0; ; tries++) {
    try {
      return await open(path, flags);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || tries >= 5) throw error;
      // Another process's `tidyPartials` may remove the folder while it is being made: a
      // recursive mkdir that finds it (EEXIST) and then looks at it fails with ENOENT. That is
      // one more try, not an image lost after a billed answer (and the row asked again).
      await mkdir(dirname(path), { recursive: true }).catch((made: NodeJS.ErrnoException) => {
        if (made.code !== 'ENOENT') throw made;
      });
    }
  }
}

/** A temporary file written as bytes arrive (an image's, a cached photo's), its folder made if need be. */
export async function openTempImage(path: string): Promise<ImageFileWriter> {
  const file = await openCreating(path);
  let bytes = 0;
  let closed = false;
  const closeHandle = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await file.close();
  };
  return {
    async write(chunk: Uint8Array): Promise<void> {
      let offset = 0;
      while (offset < chunk.length) {
        const { bytesWritten } = await file.write(chunk, offset, chunk.length - offset);
        offset += bytesWritten;
      }
      bytes += chunk.length;
    },
    async close(): Promise<TempImage> {
      // No fsync here: see `flushImages`.
      await closeHandle();
      return { tempPath: path, bytes };
    },
    async discard(): Promise<void> {
      await closeHandle().catch(() => undefined);
      await removeFile(path);
    },
  };
}

const WRITE_CHUNK = 1 << 20;

/**
 * Writes a file from pieces of text through a temporary file beside it (`.<name>.<hex>.tmp`:
 * hidden, so no listing of images meets it), flushed, then renamed into place. A manifest is
 * written once per batch, so its flush is always made.
 */
export async function writeTextAtomic(path: string, pieces: Iterable<string>): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writePieces(temp, pieces, true);
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

/** Writes pieces of text to a new file, a megabyte at a time, flushed to disk when `sync`. */
async function writePieces(path: string, pieces: Iterable<string>, sync: boolean): Promise<void> {
  const handle = await open(path, 'w');
  try {
    let chunk = '';
    for (const piece of pieces) {
      chunk += piece;
      if (chunk.length >= WRITE_CHUNK) {
        await handle.writeFile(chunk);
        chunk = '';
      }
    }
    // writeFile goes on from where the last one ended and loops over short writes.
    if (chunk) await handle.writeFile(chunk);
    if (sync) await handle.sync();
  } finally {
    await handle.close();
  }
}
