/** A row's images as small WebP thumbnails for the gallery page, with links to the full files. */
import { access } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import sharp from 'sharp';
import type { Thumbnail } from './gallery-html.js';

/** Formats the thumbnailer is let to read: the ones rows are saved in (see output/storage.ts). */
const READABLE = new Set(['jpeg', 'png', 'webp', 'gif', 'heif']);

/** A link from the page to a full image, relative so the output folder can be moved or served. */
function hrefFrom(pageDir: string, imagePath: string): string {
  return relative(pageDir, imagePath).split(sep).map(encodeURIComponent).join('/');
}

export async function thumbnail(folder: string, pageDir: string, file: string, width: number): Promise<Thumbnail> {
  // The sidecar names the file; a name that could leave the folder is not followed.
  if (file.includes('/') || file.includes('\\') || file.startsWith('.')) return { file, href: '', problem: `unsafe file name ${file}` };
  const path = join(folder, file);
  const href = hrefFrom(pageDir, path);
  try {
    // Asked first: for a file that is not there, libvips does not always say "missing".
    await access(path);
    const image = sharp(path, { failOn: 'none' });
    const meta = await image.metadata();
    if (!meta.format || !READABLE.has(meta.format)) return { file, href, problem: `no preview: ${meta.format ?? 'unknown'} image` };
    // Only the thumbnail goes into the page, never the image itself.
    const { data, info } = await image.rotate().resize({ width, withoutEnlargement: true }).webp({ quality: 72, effort: 2 }).toBuffer({ resolveWithObject: true });
    const upright = (meta.orientation ?? 1) >= 5;
    return {
      file,
      href,
      dataUri: `data:image/webp;base64,${data.toString('base64')}`,
      width: info.width,
      height: info.height,
      ...(meta.width && meta.height ? { sourceWidth: upright ? meta.height : meta.width, sourceHeight: upright ? meta.width : meta.height } : {}),
    };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { file, href, problem: code === 'ENOENT' || /missing|does not exist/i.test((error as Error).message) ? `image file missing: ${file}` : `no preview: ${(error as Error).message}` };
  }
}
