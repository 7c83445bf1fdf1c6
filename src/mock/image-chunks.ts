/**
 * Byte-level surgery on PNG, JPEG and WebP files, so the mock can make every answer's image
 * unique and as large as a real one without re-encoding: it adds ancillary PNG chunks, JPEG
 * comment segments or unknown WebP chunks, which every decoder skips.
 */

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Private, ancillary, safe-to-copy chunk type: decoders skip it without complaint. */
export const PNG_PADDING_TYPE = 'moCk';

/** Largest data of one padding chunk; small enough for any decoder's per-chunk limit. */
const PNG_PADDING_CHUNK_MAX = 256 * 1024;

/** Largest data of one JPEG COM segment (the length field counts itself). */
const JPEG_COM_MAX = 0xffff - 2;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 as PNG needs it (zlib.crc32 only exists from Node 20.15). */
export function crc32(...parts: Buffer[]): number {
  let crc = 0xffffffff;
  for (const part of parts) {
    for (let i = 0; i < part.length; i++) {
      crc = (CRC_TABLE[(crc ^ (part[i] as number)) & 0xff] as number) ^ (crc >>> 8);
    }
  }
  return (crc ^ 0xffffffff) >>> 0;
}

export function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(head.subarray(4), data), 0);
  return Buffer.concat([head, data, crc]);
}

/** A tEXt chunk; PNG wants latin-1 text, which is all the mock writes. */
export function pngTextChunk(keyword: string, text: string): Buffer {
  const data = Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.from([0]), Buffer.from(text, 'latin1')]);
  return pngChunk('tEXt', data);
}

export function jpegComment(data: Buffer): Buffer {
  if (data.length > JPEG_COM_MAX) throw new RangeError('JPEG comment too long');
  const head = Buffer.from([0xff, 0xfe, 0, 0]);
  head.writeUInt16BE(data.length + 2, 2);
  return Buffer.concat([head, data]);
}

export function isPng(image: Buffer): boolean {
  return image.subarray(0, 8).equals(PNG_SIGNATURE);
}

export function isWebp(image: Buffer): boolean {
  return image.toString('latin1', 0, 4) === 'RIFF' && image.toString('latin1', 8, 12) === 'WEBP';
}

export type ImageFormat = 'png' | 'jpeg' | 'webp';

export function formatOf(image: Buffer): ImageFormat {
  return isPng(image) ? 'png' : isWebp(image) ? 'webp' : 'jpeg';
}

/** Unknown chunk type: readers of the extended (VP8X) format skip it. */
const WEBP_PADDING_TYPE = 'MOCK';

/**
 * Data bytes of a WebP stamp chunk. Fixed, because the RIFF header (in the cached prefix)
 * counts the stamp's length before any stamp is written.
 */
const WEBP_STAMP_DATA = 128;
const WEBP_STAMP_CHUNK = 8 + WEBP_STAMP_DATA;

function webpChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.write(type, 0, 'latin1');
  head.writeUInt32LE(data.length, 4);
  // RIFF chunks are padded to an even length.
  return Buffer.concat([head, data, Buffer.alloc(data.length % 2)]);
}

interface RiffChunk {
  type: string;
  /** The whole chunk, header and padding included. */
  bytes: Buffer;
}

function webpChunks(image: Buffer): RiffChunk[] {
  const chunks: RiffChunk[] = [];
  let offset = 12;
  while (offset + 8 <= image.length) {
    const size = image.readUInt32LE(offset + 4);
    const end = offset + 8 + size + (size % 2);
    chunks.push({ type: image.toString('latin1', offset, offset + 4), bytes: image.subarray(offset, end) });
    offset = end;
  }
  return chunks;
}

/** Canvas size from a simple file's VP8 or VP8L bitstream. */
function webpCanvas(chunk: RiffChunk): [number, number] {
  const data = chunk.bytes.subarray(8);
  if (chunk.type === 'VP8 ') return [data.readUInt16LE(6) & 0x3fff, data.readUInt16LE(8) & 0x3fff];
  if (chunk.type === 'VP8L') {
    const bits = data.readUInt32LE(1);
    return [(bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1];
  }
  throw new Error(`WebP image chunk ${chunk.type} not handled`);
}

/** The VP8X header that turns a simple file into the extended format, where extra chunks are allowed. */
function vp8x(image: RiffChunk): Buffer {
  const [width, height] = webpCanvas(image);
  const data = Buffer.alloc(10);
  // VP8L carries its own alpha; say so, so that readers keep it.
  data[0] = image.type === 'VP8L' ? 0x10 : 0;
  data.writeUIntLE(width - 1, 4, 3);
  data.writeUIntLE(height - 1, 7, 3);
  return webpChunk('VP8X', data);
}

/**
 * A WebP file in the extended format, grown to about `targetBytes` with unknown chunks, its
 * length a multiple of 3 (for the cached base64), and its RIFF size already counting the stamp
 * chunk that `uniqueSegment` appends.
 */
function padWebp(image: Buffer, targetBytes: number, filler: Buffer): Buffer {
  const chunks = webpChunks(image);
  const first = chunks[0];
  if (!first) throw new Error('WebP has no chunks');
  const parts = first.type === 'VP8X' ? chunks.map((c) => c.bytes) : [vp8x(first), ...chunks.map((c) => c.bytes)];
  let length = 12 + parts.reduce((sum, part) => sum + part.length, 0);
  let left = targetBytes - length - 12 - WEBP_STAMP_CHUNK;
  while (left > 8) {
    const size = Math.min(PNG_PADDING_CHUNK_MAX, left - 8) & ~1;
    parts.push(webpChunk(WEBP_PADDING_TYPE, filler.subarray(0, size)));
    length += size + 8;
    left -= size + 8;
  }
  // Chunks of 0, 1 and 3 data bytes take 8, 10 and 12 bytes: one of them reaches every remainder mod 3.
  const aligner = [0, 1, 3].find((data) => (length + 8 + data + (data % 2)) % 3 === 0) ?? 0;
  parts.push(webpChunk(WEBP_PADDING_TYPE, filler.subarray(0, aligner)));
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(12);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(4 + body.length + WEBP_STAMP_CHUNK, 4);
  head.write('WEBP', 8, 'latin1');
  return Buffer.concat([head, body]);
}

/**
 * Where per-answer bytes go. Everything before this offset can be cached (with its base64 and
 * hash state); only the bytes after it change. PNG: before IEND. JPEG: before the first SOS,
 * because a comment must precede the scan data.
 */
export function insertionPoint(image: Buffer): number {
  // WebP: at the end, as a chunk of fixed length that the RIFF header already counts.
  if (isWebp(image)) return image.length;
  if (isPng(image)) {
    const iend = image.length - 12;
    if (image.toString('latin1', iend + 4, iend + 8) !== 'IEND') throw new Error('PNG does not end with IEND');
    return iend;
  }
  if (image[0] !== 0xff || image[1] !== 0xd8) throw new Error('not a JPEG');
  let offset = 2;
  while (offset + 4 <= image.length) {
    if (image[offset] !== 0xff) throw new Error(`bad JPEG marker at ${offset}`);
    const marker = image[offset + 1] as number;
    if (marker === 0xda) return offset;
    offset += 2 + image.readUInt16BE(offset + 2);
  }
  throw new Error('JPEG has no SOS');
}

/**
 * Where padding goes: PNG right after IHDR; JPEG right after SOI and a JFIF APP0 (which must
 * come first for strict readers).
 */
function paddingPoint(image: Buffer): number {
  if (isPng(image)) return 8 + 12 + image.readUInt32BE(8);
  if (image[2] === 0xff && image[3] === 0xe0) return 4 + image.readUInt16BE(4);
  return 2;
}

/** Padding segments of about `bytes` bytes in all (none when `bytes` is not positive). */
function paddingSegments(png: boolean, bytes: number, filler: Buffer): Buffer[] {
  const overhead = png ? 12 : 4;
  const max = png ? PNG_PADDING_CHUNK_MAX : JPEG_COM_MAX;
  const segments: Buffer[] = [];
  let left = bytes;
  while (left > 0) {
    // Leave room for the last segment's own overhead; a tiny remainder is simply dropped.
    const size = Math.min(max, left - overhead);
    if (size < 0) break;
    const data = filler.subarray(0, size);
    segments.push(png ? pngChunk(PNG_PADDING_TYPE, data) : jpegComment(data));
    left -= size + overhead;
  }
  return segments;
}

/**
 * The image grown to about `targetBytes` (never shrunk) with skippable segments, and one
 * extra small segment so that the bytes before the insertion point are a multiple of 3 long:
 * then base64(prefix) + base64(rest) is base64(whole), which lets the mock cache the prefix's
 * base64 and encode only the few changing bytes per answer.
 */
export function padImage(image: Buffer, targetBytes: number, filler: Buffer): Buffer {
  if (isWebp(image)) return padWebp(image, targetBytes, filler);
  const png = isPng(image);
  const at = paddingPoint(image);
  const padding = paddingSegments(png, targetBytes - image.length, filler);
  const grown = Buffer.concat([image.subarray(0, at), ...padding, image.subarray(at)]);
  const prefixLength = insertionPoint(grown);
  // An empty PNG chunk is 12 bytes and an empty comment 4: adding 0-2 data bytes reaches
  // every remainder mod 3.
  const overhead = png ? 12 : 4;
  const extra = (3 - ((prefixLength + overhead) % 3)) % 3;
  const aligner = png ? pngChunk(PNG_PADDING_TYPE, filler.subarray(0, extra)) : jpegComment(filler.subarray(0, extra));
  return Buffer.concat([grown.subarray(0, at), aligner, grown.subarray(at)]);
}

/** A small segment carrying per-answer text, to be put at `insertionPoint`. */
export function uniqueSegment(format: ImageFormat, text: string): Buffer {
  if (format === 'webp') {
    const data = Buffer.alloc(WEBP_STAMP_DATA, ' ');
    data.write(text, 0, WEBP_STAMP_DATA, 'latin1');
    return webpChunk(WEBP_PADDING_TYPE, data);
  }
  return format === 'png' ? pngTextChunk('Comment', text) : jpegComment(Buffer.from(text, 'latin1'));
}
