/**
 * The mock's images: valid PNG/JPEG files rendered once with sharp and then re-used. Each
 * answer gets its own copy only in a small comment segment (so sha256 tells answers apart),
 * spliced in next to a cached base64 prefix, so even 20 MB answers cost one small base64
 * encode and one small hash update.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import sharp from 'sharp';
import { formatOf, insertionPoint, padImage, uniqueSegment, type ImageFormat } from './image-chunks.js';
import { pick, seedOf } from './seed.js';

export type PayloadMode = 'small' | 'real';

/** Final image, or one of the interim thought images (1-based). */
export type ImageRole = 'final' | 'thought-1' | 'thought-2';

export type ImageMimeType = 'image/jpeg' | 'image/png' | 'image/webp';

export interface ImageRequest {
  mimeType: ImageMimeType;
  /** `imageSize` label in effect (`512`, `1K`, `2K`, `4K`); unused when `pixels` is given. */
  size: string;
  aspectRatio: string;
  /**
   * Exact pixel size, as the images endpoint names sizes (`1536x1024`): real mode draws it,
   * small mode draws its aspect ratio at the small size.
   */
  pixels?: { width: number; height: number };
  /** A corner mark, as Seedream's default `watermark: true` puts on its images. */
  watermark?: boolean;
  /** No background (GPT Image `background: transparent`). */
  transparent?: boolean;
  /** Prompt with directives removed; colours and caption come from it in small mode. */
  prompt: string;
  role: ImageRole;
}

export interface AnswerImage {
  mimeType: string;
  /** base64 text in pieces (cached prefix first); concatenated they are the `data` field. */
  data: Buffer[];
  /** sha256 (hex) of the decoded bytes; only computed for final images. */
  sha256?: string;
  bytes: number;
}

interface Template {
  mimeType: string;
  format: ImageFormat;
  prefixBase64: Buffer;
  prefixLength: number;
  prefixHash: Hash;
  suffix: Buffer;
}

/** Long side of small-mode images; thought images are half of it. */
const SMALL_LONG_SIDE = 256;

/** Side of a square image per size label; other aspect ratios keep the same area. */
const REAL_SIDE: Readonly<Record<string, number>> = { '512': 512, '1K': 1024, '2K': 2048, '4K': 4096 };

/** base64 length of a final image in real mode, after design.md section 1 (decimal MB). */
const REAL_BASE64: Readonly<Record<string, number>> = {
  '512': 1_000_000,
  '1K': 2_000_000,
  '2K': 5_000_000,
  '4K': 20_000_000,
};

/** Small-mode templates depend on the prompt; bound them so a long run does not grow forever. */
const SMALL_CACHE_LIMIT = 512;

let fillerBytes: Buffer | undefined;

/** Incompressible padding content, made once: looks like image data to anything that peeks. */
function filler(): Buffer {
  fillerBytes ??= randomBytes(256 * 1024);
  return fillerBytes;
}

function ratioOf(aspectRatio: string): [number, number] {
  const [w, h] = aspectRatio.split(':').map(Number);
  return w && h ? [w, h] : [1, 1];
}

/** The size label whose real payload fits a picture of this many pixels. */
function labelOfArea(pixels: number): string {
  if (pixels <= 512 * 512 * 1.5) return '512';
  if (pixels <= 1024 * 1024 * 2) return '1K';
  if (pixels <= 2048 * 2048 * 1.5) return '2K';
  return '4K';
}

/** An exact pixel size: as asked in real mode; in small mode its ratio with the small long side. */
function pixelDimensions(mode: PayloadMode, width: number, height: number): [number, number] {
  if (mode === 'real') return [width, height];
  const scale = SMALL_LONG_SIDE / Math.max(width, height);
  return [Math.max(8, Math.round(width * scale)), Math.max(8, Math.round(height * scale))];
}

/** Pixel size: small mode fixes the long side, real mode the area (as the real sizes do). */
export function dimensions(mode: PayloadMode, size: string, aspectRatio: string, role: ImageRole): [number, number] {
  const [rw, rh] = ratioOf(aspectRatio);
  const shrink = role === 'final' ? 1 : 2;
  if (mode === 'small') {
    const long = SMALL_LONG_SIDE / shrink;
    const scale = long / Math.max(rw, rh);
    return [Math.max(8, Math.round(rw * scale)), Math.max(8, Math.round(rh * scale))];
  }
  const side = (REAL_SIDE[size] ?? 1024) / shrink;
  const scale = side / Math.sqrt(rw * rh);
  // Multiples of 8 keep JPEG blocks whole, like the real sizes (e.g. 1376x768).
  const even = (n: number) => Math.max(8, Math.round(n / 8) * 8);
  return [even(rw * scale), even(rh * scale)];
}

/** Target byte count (decoded) in real mode; thought images are a quarter of a final. */
function realTargetBytes(size: string, role: ImageRole): number {
  const base64 = (REAL_BASE64[size] ?? 2_000_000) / (role === 'final' ? 1 : 4);
  return Math.floor((base64 * 3) / 4);
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface Look {
  watermark?: boolean;
  transparent?: boolean;
}

/** A gradient, a 5x5 symmetric block pattern and a caption, all picked by `seed`. */
function svgFor(width: number, height: number, seed: number, role: ImageRole, caption: string, look: Look = {}): string {
  const hue = pick(seed, 1, 0, 359);
  // Thought images are washed out drafts, so they differ visibly from the final one.
  const sat = role === 'final' ? 70 : 15;
  const from = `hsl(${hue},${sat}%,45%)`;
  const to = `hsl(${(hue + 140) % 360},${sat}%,${role === 'final' ? 65 : 80}%)`;
  const cell = Math.min(width, height) / 8;
  const left = width / 2 - cell * 2.5;
  const top = height / 2 - cell * 2.5;
  const blocks: string[] = [];
  const draftCut = role === 'thought-1' ? 2 : role === 'thought-2' ? 4 : 5;
  for (let row = 0; row < draftCut; row++) {
    for (let col = 0; col < 3; col++) {
      if (pick(seed, 10 + row * 3 + col, 0, 1) === 0) continue;
      for (const c of col === 2 ? [2] : [col, 4 - col]) {
        blocks.push(`<rect x="${left + c * cell}" y="${top + row * cell}" width="${cell}" height="${cell}"/>`);
      }
    }
  }
  const fontSize = Math.max(6, Math.round(Math.min(width / 16, height / 6)));
  const markSize = Math.max(5, Math.round(fontSize * 0.6));
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">` +
    `<stop offset="0" stop-color="${from}"/><stop offset="1" stop-color="${to}"/></linearGradient></defs>` +
    (look.transparent ? '' : `<rect width="100%" height="100%" fill="url(#g)"/>`) +
    `<g fill="hsl(${(hue + 200) % 360},60%,92%)" fill-opacity="0.85">${blocks.join('')}</g>` +
    `<text x="50%" y="${height - fontSize * 0.6}" font-family="DejaVu Sans, sans-serif" font-size="${fontSize}" ` +
    `text-anchor="middle" fill="#fff">${escapeXml(caption)}</text>` +
    (look.watermark
      ? `<text x="${width - markSize * 0.5}" y="${markSize * 1.2}" font-family="DejaVu Sans, sans-serif" font-size="${markSize}" ` +
        `text-anchor="end" fill="#fff" fill-opacity="0.7">AI generated</text>`
      : '') +
    `</svg>`
  );
}

/** First words of the prompt, short enough to fit under the picture. */
function captionOf(prompt: string): string {
  const words = prompt.trim().split(/\s+/).slice(0, 5).join(' ');
  return words.length > 40 ? `${words.slice(0, 39)}…` : words;
}

async function render(
  mode: PayloadMode,
  mimeType: ImageMimeType,
  width: number,
  height: number,
  seed: number,
  role: ImageRole,
  caption: string,
  look: Look,
): Promise<Buffer> {
  const image = sharp(Buffer.from(svgFor(width, height, seed, role, caption, look)));
  // Real mode pads the file anyway and a 4K render should not take seconds: fast level 1.
  // Small mode wants a few KB: level 9 costs nothing at 256 px.
  if (mimeType === 'image/png') return image.png({ compressionLevel: mode === 'real' ? 1 : 9 }).toBuffer();
  if (mimeType === 'image/webp') return image.webp({ quality: 85, effort: mode === 'real' ? 0 : 4 }).toBuffer();
  return image.jpeg({ quality: 85 }).toBuffer();
}

function toTemplate(mimeType: string, image: Buffer): Template {
  const at = insertionPoint(image);
  const prefix = image.subarray(0, at);
  return {
    mimeType,
    format: formatOf(image),
    prefixBase64: Buffer.from(prefix.toString('base64'), 'latin1'),
    prefixLength: prefix.length,
    prefixHash: createHash('sha256').update(prefix),
    suffix: Buffer.from(image.subarray(at)),
  };
}

/** Renders and caches image templates for one mock server. */
export class ImageFactory {
  private readonly templates = new Map<string, Promise<Template>>();

  constructor(private readonly mode: PayloadMode) {}

  /**
   * One image for one answer; `stamp` goes into the image bytes (latin-1 text) to make it
   * unique. Pass `hash` for final images, whose sha256 the request log records.
   */
  async image(request: ImageRequest, stamp: string, hash: boolean): Promise<AnswerImage> {
    const template = await this.template(request);
    const tail = Buffer.concat([uniqueSegment(template.format, stamp), template.suffix]);
    return {
      mimeType: template.mimeType,
      data: [template.prefixBase64, Buffer.from(tail.toString('base64'), 'latin1')],
      sha256: hash ? template.prefixHash.copy().update(tail).digest('hex') : undefined,
      bytes: template.prefixLength + tail.length,
    };
  }

  private template(request: ImageRequest): Promise<Template> {
    const { mimeType, aspectRatio, role, pixels } = request;
    const size = pixels ? labelOfArea(pixels.width * pixels.height) : request.size;
    const [width, height] = pixels
      ? pixelDimensions(this.mode, pixels.width, pixels.height)
      : dimensions(this.mode, size, aspectRatio, role);
    const look: Look = { watermark: request.watermark, transparent: request.transparent };
    // Real mode renders one picture per size (prompt-independent) so a benchmark never waits
    // on sharp. Small mode draws each prompt's final image (cheap at 256 px) but only a dozen
    // draft variants for thought images, so unique prompts cost one render, not three.
    const variant =
      this.mode === 'real' ? `real ${size}` : role === 'final' ? request.prompt : `draft ${seedOf(request.prompt) % 12}`;
    const key = `${mimeType}|${width}x${height}|${role}|${size}|${look.watermark ? 'w' : ''}${look.transparent ? 't' : ''}|${variant}`;
    const cached = this.templates.get(key);
    if (cached) {
      // Map order is insertion order: re-inserting marks the entry as recently used.
      this.templates.delete(key);
      this.templates.set(key, cached);
      return cached;
    }
    const named = pixels ? `${pixels.width}x${pixels.height}` : `${size} ${aspectRatio}`;
    const caption = this.mode === 'real' ? `tokenhot mock ${named}` : role === 'final' ? captionOf(request.prompt) : 'draft';
    const made = render(this.mode, mimeType, width, height, seedOf(variant), role, caption, look).then((image) =>
      toTemplate(mimeType, padImage(image, this.mode === 'real' ? realTargetBytes(size, role) : 0, filler())),
    );
    made.catch(() => this.templates.delete(key));
    this.templates.set(key, made);
    if (this.mode === 'small' && this.templates.size > SMALL_CACHE_LIMIT) {
      const oldest = this.templates.keys().next().value;
      if (oldest !== undefined) this.templates.delete(oldest);
    }
    return made;
  }
}
