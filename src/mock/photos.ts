/**
 * Product photos as a shop's CDN serves them, for feeds whose photos are URLs:
 * `GET /photos/<name>.jpg` answers a small JPEG of its own per name, with an `ETag` and a
 * `Last-Modified`, and 304 to a request that names the current one. `POST /__mock/photos/<name>.jpg`
 * changes a photo (a new version, a new ETag); a name starting with `missing` is a 404.
 * Every request is logged (`GET /__mock/photo-requests`), conditional or not.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import sharp from 'sharp';
import { seedOf } from './seed.js';

export const PHOTO_PATH = /^\/photos\/([A-Za-z0-9._-]+\.(?:jpg|jpeg))$/;
export const PHOTO_CHANGE_PATH = /^\/__mock\/photos\/([A-Za-z0-9._-]+\.(?:jpg|jpeg))$/;

export interface PhotoRequestRecord {
  path: string;
  status: number;
  /** The request named a version it had (If-None-Match or If-Modified-Since). */
  conditional: boolean;
}

interface Photo {
  version: number;
  bytes: Buffer;
  etag: string;
  lastModified: string;
}

export class MockPhotos {
  readonly requests: PhotoRequestRecord[] = [];
  private readonly photos = new Map<string, Promise<Photo>>();
  private readonly versions = new Map<string, number>();

  async serve(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    const conditional = req.headers['if-none-match'] !== undefined || req.headers['if-modified-since'] !== undefined;
    const answer = (status: number): void => {
      this.requests.push({ path: `/photos/${name}`, status, conditional });
    };
    if (name.startsWith('missing')) {
      answer(404);
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found');
      return;
    }
    const photo = await this.photo(name);
    const headers = { etag: photo.etag, 'last-modified': photo.lastModified, 'cache-control': 'max-age=300' };
    if (req.headers['if-none-match'] === photo.etag) {
      answer(304);
      res.writeHead(304, headers).end();
      return;
    }
    answer(200);
    res.writeHead(200, { ...headers, 'content-type': 'image/jpeg', 'content-length': String(photo.bytes.length) });
    res.end(req.method === 'HEAD' ? undefined : photo.bytes);
  }

  /** The photo is replaced by a new one (the shop uploaded another). */
  change(name: string): number {
    const version = (this.versions.get(name) ?? 1) + 1;
    this.versions.set(name, version);
    this.photos.delete(name);
    return version;
  }

  clear(): void {
    this.requests.length = 0;
  }

  private photo(name: string): Promise<Photo> {
    let photo = this.photos.get(name);
    if (!photo) {
      photo = render(name, this.versions.get(name) ?? 1);
      this.photos.set(name, photo);
    }
    return photo;
  }
}

/** A 256 px JPEG in a colour of its own per name and version. */
async function render(name: string, version: number): Promise<Photo> {
  const seed = seedOf(`${name}#${version}`);
  const background = { r: seed & 0xff, g: (seed >>> 8) & 0xff, b: (seed >>> 16) & 0xff };
  const bytes = await sharp({ create: { width: 256, height: 256, channels: 3, background } }).jpeg({ quality: 80 }).toBuffer();
  const etag = `"${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}"`;
  // A fixed date per version: revalidation by date works as well as by ETag.
  const lastModified = new Date(Date.UTC(2026, 0, 1) + version * 86_400_000).toUTCString();
  return { version, bytes, etag, lastModified };
}
