/**
 * Image types by content. File names lie (a `.png` exported as JPEG, a text file renamed), and
 * the endpoint needs the true `mimeType` of each inline image, so types come from magic bytes.
 */
import { open } from 'node:fs/promises';

export type ImageMime = 'image/png' | 'image/jpeg' | 'image/webp' | 'image/heic' | 'image/heif' | 'image/gif';

/** The image types Gemini takes as input (reference images). GIF is recognised but not among them. */
export const GEMINI_INPUT_MIME_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/heic', 'image/heif'] as const;

export type GeminiInputMime = (typeof GEMINI_INPUT_MIME_TYPES)[number];

/** Human names of the accepted types, for messages. */
export const GEMINI_INPUT_TYPE_NAMES = 'PNG, JPEG, WebP, HEIC or HEIF';

/** How many leading bytes `sniffImageMime` may look at (the HEIF `ftyp` box lists its brands there). */
export const SNIFF_BYTES = 64;

export function isGeminiInputMime(mime: string | undefined): mime is GeminiInputMime {
  return (GEMINI_INPUT_MIME_TYPES as readonly string[]).includes(mime ?? '');
}

function ascii(head: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...head.subarray(start, end));
}

function startsWith(head: Uint8Array, bytes: readonly number[]): boolean {
  return head.length >= bytes.length && bytes.every((b, i) => head[i] === b);
}

// ISO BMFF brands. AVIF shares the HEIF container (`mif1`) but Gemini does not take it, so an
// `avif` brand anywhere wins over the generic HEIF brands.
const HEIC_BRANDS = new Set(['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'hevm', 'hevs']);
const HEIF_BRANDS = new Set(['mif1', 'msf1', 'heif', 'mif2']);
const AVIF_BRANDS = new Set(['avif', 'avis']);

function sniffIsoBmff(head: Uint8Array): 'image/heic' | 'image/heif' | undefined {
  if (head.length < 12 || ascii(head, 4, 8) !== 'ftyp') return undefined;
  const boxSize = ((head[0] ?? 0) << 24) | ((head[1] ?? 0) << 16) | ((head[2] ?? 0) << 8) | (head[3] ?? 0);
  const end = Math.min(head.length, boxSize >= 16 ? boxSize : 12);
  const brands = [ascii(head, 8, 12)];
  // Compatible brands follow the major brand and the 4-byte minor version.
  for (let i = 16; i + 4 <= end; i += 4) brands.push(ascii(head, i, i + 4));
  if (brands.some((b) => AVIF_BRANDS.has(b))) return undefined;
  if (brands.some((b) => HEIC_BRANDS.has(b))) return 'image/heic';
  if (brands.some((b) => HEIF_BRANDS.has(b))) return 'image/heif';
  return undefined;
}

/** The image type of a file from its first bytes (pass at least `SNIFF_BYTES` when there are that many). */
export function sniffImageMime(head: Uint8Array): ImageMime | undefined {
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (startsWith(head, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (head.length >= 12 && ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 12) === 'WEBP') return 'image/webp';
  if (head.length >= 6 && (ascii(head, 0, 6) === 'GIF87a' || ascii(head, 0, 6) === 'GIF89a')) return 'image/gif';
  return sniffIsoBmff(head);
}

/**
 * The image type of a file, reading only its first bytes (reference images can be tens of MB).
 * File system errors (missing file, a directory) are thrown as they come.
 */
export async function readImageMime(path: string): Promise<ImageMime | undefined> {
  const handle = await open(path, 'r');
  try {
    const head = new Uint8Array(SNIFF_BYTES);
    const { bytesRead } = await handle.read(head, 0, SNIFF_BYTES, 0);
    return sniffImageMime(head.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}
