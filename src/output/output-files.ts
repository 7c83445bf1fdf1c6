/**
 * The seam between the output store and where finished files live: a local folder or a bucket.
 * Files are named by their path relative to the output (`<batch>/<id>.png`, `ledger/<segment>`),
 * `/`-separated. Finished files always come from a whole local file (an image received into a
 * temporary file, a sidecar written beside it), so neither side ever holds a half-written file
 * where a reader looks.
 */
import { opendir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface OutputFiles {
  /** How a person or a manifest names a finished file: a path, or an `s3://` URL. */
  locate(name: string): string;
  /** Puts a whole local file in place as `name`; the local file is gone afterwards. */
  moveIn(localPath: string, name: string, contentType?: string): Promise<void>;
  /** A small text file (a sidecar, a manifest), or undefined when there is none. */
  readText(name: string): Promise<string | undefined>;
  /** Removes a file; one already gone is no error. */
  remove(name: string): Promise<void>;
  /** The names of the files directly in a folder (none when it does not exist). */
  listFolder(folder: string): AsyncGenerator<string>;
}

/** Finished files in a local folder: the layout on disk is the layout of names. */
export class LocalFolder implements OutputFiles {
  constructor(readonly root: string) {}

  locate(name: string): string {
    return join(this.root, name);
  }

  async moveIn(localPath: string, name: string): Promise<void> {
    await rename(localPath, this.locate(name));
  }

  async readText(name: string): Promise<string | undefined> {
    try {
      return await readFile(this.locate(name), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async remove(name: string): Promise<void> {
    try {
      await unlink(this.locate(name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  async *listFolder(folder: string): AsyncGenerator<string> {
    let listing;
    try {
      listing = await opendir(this.locate(folder), { bufferSize: 256 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for await (const dirent of listing) if (dirent.isFile()) yield dirent.name;
  }
}
