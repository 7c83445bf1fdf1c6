/**
 * A row's content hash: what decides the image (prompt, model, aspect ratio, image size, size,
 * quality and the bytes of its reference images). Tags, metadata and the id are left out: changing them does
 * not call for a new image.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Row } from '../core/types.js';
import { isPhotoUrl } from './photo-url.js';

/** The content of a photo named by URL, as a hash (rows/photo-cache.ts: its bytes' sha256). */
export type PhotoContentHash = (url: string) => Promise<string>;

/**
 * Hashes of reference files, so a file used by 10,000 rows is read once per firing. A photo named
 * by URL counts by its content when `photoContent` is given, else by its URL.
 */
export class FileHashes {
  private readonly cache = new Map<string, Promise<string>>();

  constructor(private readonly photoContent?: PhotoContentHash) {}

  of(path: string): Promise<string> {
    let hash = this.cache.get(path);
    if (!hash) {
      hash = isPhotoUrl(path) ? (this.photoContent?.(path) ?? Promise.resolve(`url:${path}`)) : this.ofFile(path);
      this.cache.set(path, hash);
    }
    return hash;
  }

  private ofFile(path: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const digest = createHash('sha256');
      createReadStream(path)
        .on('data', (chunk) => digest.update(chunk))
        .on('end', () => resolve(digest.digest('hex')))
        .on('error', reject);
    });
  }
}

export async function rowContentHash(row: Row, files: FileHashes): Promise<string> {
  const references = await Promise.all(row.referenceImages.map((path) => files.of(path)));
  // size and quality only where given, so rows without them keep the hashes of earlier versions.
  const exact = row.size !== undefined || row.quality !== undefined ? [row.size ?? '', row.quality ?? ''] : [];
  const content = JSON.stringify([row.prompt, row.model, row.aspectRatio ?? '', row.imageSize ?? '', references, ...exact]);
  return createHash('sha256').update(content).digest('hex').slice(0, 32);
}
