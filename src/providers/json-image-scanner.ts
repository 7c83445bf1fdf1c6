/**
 * Reads a JSON answer as it streams in, without ever holding an image in memory.
 *
 * A 4K answer carries ~20 MB of base64 per image (and Gemini up to two interim thought images
 * before it); parsing the body whole would need several times that per call in flight. Instead
 * the scanner follows the JSON structure byte by byte, decodes every image string (which strings
 * hold images is the provider's to say: Gemini's `inlineData.data`, the images endpoint's
 * `data[i].b64_json`) straight into a temporary file, and keeps the rest of the body (a few KB:
 * text, finish reasons, usage...) as a "skeleton" in which each image string is replaced by a
 * placeholder and each skipped string (Gemini's `thoughtSignature`, megabytes on real answers) by
 * an empty string. The skeleton is then parsed with JSON.parse, so every other field comes out
 * exact.
 */
import { unlink } from 'node:fs/promises';
import type { ImageFileWriter, ImageSink, TempImage } from './provider.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;

const PLACEHOLDER_PREFIX = 'tokenhot:image:';

/** Longest `data:<type>;base64,` prefix looked for before an image string is taken as plain base64. */
const MAX_DATA_URI_PREFIX = 128;

/**
 * Size of the buffer that image bytes are gathered in before a write: decoded base64 here (see
 * `JsonImageScanner.out`), a link's download in image-link.ts. A network chunk decodes to 50-200 KB.
 */
export const WRITE_BUFFER_BYTES = 256 * 1024;

/**
 * base64 text decoded at once. Decoding goes through a string of it, and a string over 128 KB is
 * a "large object" to V8, which does not hurry to collect it: decoding the socket's chunks whole
 * (up to 260 KB when they pile up) kept several MB more of them alive, and fewer young
 * collections left more of the socket's buffers waiting for one.
 */
const TEXT_SLICE_BYTES = 96 * 1024;

/**
 * Write buffers of images finished, handed to the next image. A buffer lives as long as its
 * image is read, long enough for the GC to move it to the old generation, where, once dropped,
 * it waits for a full collection: a new 1 MB buffer per image left tens of MB of them behind at
 * 32 answers in flight (peak RSS of a worker over 200 MB on 4K answers).
 */
const spareWriteBuffers: Buffer[] = [];
const MAX_SPARE_WRITE_BUFFERS = 64;

/** A write buffer (WRITE_BUFFER_BYTES), a spare one when there is one. */
export function takeWriteBuffer(): Buffer {
  return spareWriteBuffers.pop() ?? Buffer.allocUnsafe(WRITE_BUFFER_BYTES);
}

/** Gives a write buffer back; only once no write of its bytes is still pending. */
export function giveBackWriteBuffer(buffer: Buffer): void {
  if (spareWriteBuffers.length < MAX_SPARE_WRITE_BUFFERS && !spareWriteBuffers.includes(buffer)) spareWriteBuffers.push(buffer);
}

/**
 * Removes a temporary image file, already gone or not. `unlink` rather than `rm`: `rm` looks at
 * the path first (an lstat), a thread-pool round trip per thought image for nothing.
 */
export async function removeTempFile(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** The placeholder the skeleton holds instead of image number `index`. */
export function imagePlaceholder(index: number): string {
  return `${PLACEHOLDER_PREFIX}${index}`;
}

/** The image number behind a placeholder, or undefined for any other string. */
export function placeholderIndex(value: unknown): number | undefined {
  if (typeof value !== 'string' || !value.startsWith(PLACEHOLDER_PREFIX)) return undefined;
  return Number(value.slice(PLACEHOLDER_PREFIX.length));
}

/** Where the scanner stands: one frame per object or list it is inside, innermost last. */
export interface JsonFrame {
  readonly isObject: boolean;
  /** The key whose value is being read (objects only). */
  readonly key?: string;
}

interface Frame extends JsonFrame {
  isObject: boolean;
  key?: string;
  expectKey: boolean;
}

/** Which strings of an answer are images, and which are left out of the skeleton. */
export interface ImageStrings {
  /** True when the string about to start, at `frames` (innermost last), holds base64 image data. */
  isImage(frames: readonly JsonFrame[]): boolean;
  /** True when the string about to start is of no use and may be megabytes (never held). */
  isSkipped?(frames: readonly JsonFrame[]): boolean;
}

/** `skip`: a string left out of the skeleton (a `thoughtSignature`, up to megabytes). */
type Mode = 'structure' | 'key' | 'string' | 'image' | 'skip';

/** Thrown when the body is not the JSON it should be; the caller decides the error kind. */
export class MalformedAnswerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedAnswerError';
  }
}

export interface ScannedAnswer {
  /** The body with image strings replaced by placeholders, parsed. */
  skeleton: unknown;
  /** Temporary files of every image string, by placeholder number. */
  images: Map<number, TempImage>;
  /**
   * Why an image could not be written locally (disk full, say). The body is still read to the
   * end, because the answer is billed and its usage must reach the ledger.
   */
  saveError?: unknown;
}

export class JsonImageScanner {
  private readonly stack: Frame[] = [];
  private mode: Mode = 'structure';
  private escapePending = false;
  private keyBytes: Buffer[] = [];
  private readonly skeleton: Buffer[] = [];
  private finished = false;
  private started = false;
  private imageCount = 0;
  private writer?: ImageFileWriter;
  private decoder?: Base64StreamDecoder;
  private currentIndex = -1;
  /** Where the current chunk's bytes not yet in the skeleton start. */
  private copyFrom = 0;
  /**
   * Decoded image bytes gathered into one write: a write (a thread-pool round trip) per network
   * chunk costs more than the copy it saves. Taken when an image starts, given back when it ends.
   */
  private out?: Buffer;
  private outLength = 0;
  private readonly images = new Map<number, TempImage>();
  private saveError?: unknown;

  constructor(
    private readonly sink: ImageSink,
    private readonly strings: ImageStrings,
  ) {}

  /** Feeds the next chunk of the body. */
  async push(chunk: Buffer): Promise<void> {
    const n = chunk.length;
    this.copyFrom = 0;
    let i = 0;
    while (i < n) {
      if (this.finished) {
        // The value's last bytes (up to its closing bracket) are kept; anything after it is
        // ignored (a trailing newline in practice).
        if (this.copyFrom < i) this.appendSkeleton(chunk.subarray(this.copyFrom, i));
        this.copyFrom = n;
        break;
      }
      if (this.mode === 'image') {
        // Inline rather than a step of its own: an async step would cost a promise per chunk.
        const quote = chunk.indexOf(QUOTE, i);
        await this.writeImageText(chunk.subarray(i, quote === -1 ? n : quote));
        if (quote === -1) {
          this.copyFrom = n;
          break;
        }
        await this.endImageString(quote);
        i = quote + 1;
      } else if (this.mode === 'structure') {
        i = this.readStructure(chunk, i);
        // An image string just started (`as`: TypeScript keeps the narrowing across the call).
        if ((this.mode as Mode) === 'image') await this.openImage(this.imageCount - 1);
      } else {
        i = this.readString(chunk, i);
      }
    }
    if (this.copyFrom < n) this.appendSkeleton(chunk.subarray(this.copyFrom, n));
  }

  /** Ends the body; throws MalformedAnswerError when it was cut short or is not JSON. */
  end(): ScannedAnswer {
    if (!this.started || !this.finished) throw new MalformedAnswerError('the answer was cut short');
    const text = Buffer.concat(this.skeleton).toString('utf8');
    let skeleton: unknown;
    try {
      skeleton = JSON.parse(text);
    } catch (error) {
      throw new MalformedAnswerError(`the answer is not valid JSON (${(error as Error).message})`);
    }
    return { skeleton, images: this.images, ...(this.saveError === undefined ? {} : { saveError: this.saveError }) };
  }

  /** Removes every temporary file written so far (a failed or abandoned answer). */
  async discard(): Promise<void> {
    const writer = this.writer;
    this.writer = undefined;
    // Pushes are awaited one by one, so no write of the buffer is pending here.
    this.releaseOut();
    if (writer) await writer.discard();
    await Promise.all([...this.images.values()].map((image) => removeTempFile(image.tempPath)));
    this.images.clear();
  }

  /**
   * Reads structure from `from` until a string starts, the top-level value ends or the chunk
   * does; returns where reading goes on.
   */
  private readStructure(chunk: Buffer, from: number): number {
    for (let i = from; i < chunk.length; i++) {
      const byte = chunk[i]!;
      if (byte === QUOTE) {
        this.startString(chunk, i);
        return i + 1;
      }
      this.followNesting(byte);
      if (this.finished) return i + 1;
    }
    return chunk.length;
  }

  /** Brackets open and close frames; a comma in an object means a key comes next. */
  private followNesting(byte: number): void {
    switch (byte) {
      case OPEN_OBJECT:
        this.stack.push({ isObject: true, expectKey: true });
        this.started = true;
        break;
      case OPEN_ARRAY:
        this.stack.push({ isObject: false, expectKey: false });
        this.started = true;
        break;
      case CLOSE_OBJECT:
      case CLOSE_ARRAY:
        if (this.stack.pop() === undefined) throw new MalformedAnswerError('unbalanced JSON in the answer');
        if (this.stack.length === 0) this.finished = true;
        break;
      case COMMA: {
        const top = this.stack[this.stack.length - 1];
        if (top?.isObject) top.expectKey = true;
        break;
      }
      default:
        break;
    }
  }

  /**
   * The string opening at `chunk[at]` is a key, an image (a placeholder in the skeleton; the
   * caller opens its file), a skipped string or a plain one.
   */
  private startString(chunk: Buffer, at: number): void {
    const top = this.stack[this.stack.length - 1];
    if (top?.isObject && top.expectKey) {
      top.expectKey = false;
      this.mode = 'key';
      this.keyBytes = [];
    } else if (this.strings.isImage(this.stack)) {
      this.appendSkeleton(chunk.subarray(this.copyFrom, at));
      const index = this.imageCount++;
      this.appendSkeleton(Buffer.from(`"${imagePlaceholder(index)}"`));
      this.mode = 'image';
      this.copyFrom = at + 1;
    } else if (this.strings.isSkipped?.(this.stack)) {
      this.appendSkeleton(chunk.subarray(this.copyFrom, at + 1));
      this.mode = 'skip';
      this.copyFrom = at + 1;
    } else {
      this.mode = 'string';
    }
  }

  /** Reads a key, plain or skipped string from `from` to its end or the chunk's; returns where reading goes on. */
  private readString(chunk: Buffer, from: number): number {
    const n = chunk.length;
    const end = this.findStringEnd(chunk, from);
    if (this.mode === 'key') this.keyBytes.push(Buffer.from(chunk.subarray(from, end === -1 ? n : end)));
    if (end === -1) {
      if (this.mode === 'skip') this.copyFrom = n;
      return n;
    }
    if (this.mode === 'key') this.finishKey();
    // A skipped string's closing quote is kept: the skeleton holds an empty string for it.
    if (this.mode === 'skip') this.copyFrom = end;
    this.mode = 'structure';
    return end + 1;
  }

  /** The image string's closing quote is at `quote`; it was already written with the placeholder. */
  private async endImageString(quote: number): Promise<void> {
    await this.closeImage();
    this.mode = 'structure';
    this.copyFrom = quote + 1;
  }

  /** Index of the closing quote of the current string, or -1 when it goes on past this chunk. */
  private findStringEnd(chunk: Buffer, from: number): number {
    for (let i = from; i < chunk.length; i++) {
      if (this.escapePending) {
        this.escapePending = false;
        continue;
      }
      const byte = chunk[i];
      if (byte === BACKSLASH) this.escapePending = true;
      else if (byte === QUOTE) return i;
    }
    return -1;
  }

  private finishKey(): void {
    const top = this.stack[this.stack.length - 1];
    const raw = Buffer.concat(this.keyBytes).toString('utf8');
    this.keyBytes = [];
    if (top) top.key = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
  }

  private appendSkeleton(bytes: Buffer): void {
    // Copy: a slice would keep the whole network chunk (mostly image data) alive.
    if (bytes.length > 0) this.skeleton.push(Buffer.from(bytes));
  }

  private async openImage(index: number): Promise<void> {
    this.decoder = new Base64StreamDecoder();
    this.head = [];
    this.currentIndex = index;
    if (this.saveError !== undefined) return;
    try {
      this.writer = await this.sink.open();
    } catch (error) {
      this.saveError = error;
    }
  }

  /**
   * The first bytes of an image string, until it is known whether they start a data URI
   * (`data:image/png;base64,`, as some gateways write `b64_json`): its prefix is dropped.
   */
  private head?: Buffer[];

  private async writeImageText(piece: Buffer): Promise<void> {
    let text = piece;
    if (this.head) {
      this.head.push(Buffer.from(piece));
      const start = Buffer.concat(this.head);
      const comma = start.indexOf(COMMA);
      const isUri = start.subarray(0, 5).toString('latin1') === 'data:'.slice(0, Math.min(5, start.length));
      // Undecided while it may still be a data URI whose comma has not come yet.
      if (isUri && comma === -1 && start.length < MAX_DATA_URI_PREFIX) return;
      this.head = undefined;
      text = isUri && comma !== -1 ? start.subarray(comma + 1) : start;
    }
    if (text.length === 0) return;
    const decoder = this.decoder!;
    if (!this.writer) {
      // Nothing is saved any more (see `saveError`); the text is still checked and consumed.
      decoder.decode(text);
      return;
    }
    // A slice at a time (see TEXT_SLICE_BYTES), into the write buffer, even a large piece (the
    // socket's buffered chunks joined): never into a buffer of its own.
    for (let at = 0; at < text.length; at += TEXT_SLICE_BYTES) {
      const slice = text.subarray(at, at + TEXT_SLICE_BYTES);
      if (this.outLength + decoder.maxDecodedLength(slice) > WRITE_BUFFER_BYTES) await this.flushOut();
      this.out ??= takeWriteBuffer();
      this.outLength += decoder.decodeInto(slice, this.out, this.outLength);
    }
  }

  /** Gives the write buffer back: its bytes are written (flushOut resolved) or dropped. */
  private releaseOut(): void {
    if (this.out) giveBackWriteBuffer(this.out);
    this.out = undefined;
    this.outLength = 0;
  }

  /** Writes the decoded bytes gathered so far; the buffer is free again when this resolves. */
  private async flushOut(): Promise<void> {
    const length = this.outLength;
    this.outLength = 0;
    if (length === 0 || !this.writer || !this.out) return;
    const bytes = this.out.subarray(0, length);
    await this.guard(() => this.writer!.write(bytes));
  }

  private async closeImage(): Promise<void> {
    if (this.head) {
      // A string shorter than a data URI prefix: decoded as it is.
      const start = Buffer.concat(this.head);
      this.head = undefined;
      await this.writeImageText(start);
    }
    const tail = this.decoder!.end();
    this.decoder = undefined;
    await this.flushOut();
    this.releaseOut();
    if (!this.writer) return;
    if (tail.length > 0) await this.guard(() => this.writer!.write(tail));
    const writer = this.writer;
    this.writer = undefined;
    if (!writer) return;
    try {
      this.images.set(this.currentIndex, await writer.close());
    } catch (error) {
      this.saveError ??= error;
      await writer.discard().catch(() => undefined);
    }
  }

  /** A failed local write stops saving images, not reading the (billed) answer. */
  private async guard(write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (error) {
      this.saveError ??= error;
      const writer = this.writer;
      this.writer = undefined;
      await writer?.discard().catch(() => undefined);
    }
  }
}

/**
 * Decodes base64 that arrives in arbitrary pieces: whole 4-character groups are decoded at once,
 * the rest is carried to the next piece. JSON escapes (`\/`, `\uXXXX`, escaped newlines) are
 * undone first; encoders differ in what they escape.
 *
 * The common piece (no escape in it) is decoded from its bytes straight into the caller's buffer:
 * the 0-3 characters carried over are completed from the piece's first bytes on their own, so a
 * 100 KB piece is never glued to them (a copy of the whole piece per network chunk).
 */
export class Base64StreamDecoder {
  private carry = '';
  private pendingEscape = '';

  /** Most bytes the next `decodeInto(piece)` can write. */
  maxDecodedLength(piece: Buffer): number {
    // +1: an escape begun in the previous piece (held back whole) adds one character at most.
    return Math.ceil((this.carry.length + piece.length + 1) / 4) * 3;
  }

  decode(piece: Buffer): Buffer {
    const out = Buffer.allocUnsafe(this.maxDecodedLength(piece));
    return out.subarray(0, this.decodeInto(piece, out, 0));
  }

  /**
   * Decodes `piece` into `target` at `offset`; returns the bytes written. `target` must have
   * room for `maxDecodedLength(piece)` bytes.
   */
  decodeInto(piece: Buffer, target: Buffer, offset: number): number {
    if (this.pendingEscape || piece.indexOf(BACKSLASH) !== -1) return this.decodeTextInto(this.unescape(piece.toString('latin1')), target, offset);
    let start = 0;
    let written = 0;
    if (this.carry) {
      const need = 4 - this.carry.length;
      if (piece.length < need) {
        this.carry += piece.toString('latin1');
        return 0;
      }
      written += target.write(this.carry + piece.toString('latin1', 0, need), offset, 'base64');
      this.carry = '';
      start = need;
    }
    const usable = start + ((piece.length - start) & ~3);
    if (usable < piece.length) this.carry = piece.toString('latin1', usable);
    if (usable > start) written += target.write(piece.toString('latin1', start, usable), offset + written, 'base64');
    return written;
  }

  end(): Buffer {
    if (this.pendingEscape) throw new MalformedAnswerError('image data ends inside an escape');
    const rest = this.carry;
    this.carry = '';
    return rest ? Buffer.from(rest, 'base64') : EMPTY;
  }

  /** The slow path, for pieces with escapes: decodes text (carry first) into `target`. */
  private decodeTextInto(unescaped: string, target: Buffer, offset: number): number {
    const text = this.carry + unescaped;
    const usable = text.length - (text.length % 4);
    this.carry = text.slice(usable);
    return usable > 0 ? target.write(usable === text.length ? text : text.slice(0, usable), offset, 'base64') : 0;
  }

  private unescape(text: string): string {
    const source = this.pendingEscape + text;
    this.pendingEscape = '';
    let out = '';
    let i = 0;
    while (i < source.length) {
      const slash = source.indexOf('\\', i);
      if (slash === -1) {
        out += source.slice(i);
        break;
      }
      out += source.slice(i, slash);
      const kind = source[slash + 1];
      if (kind === undefined || (kind === 'u' && slash + 6 > source.length)) {
        this.pendingEscape = source.slice(slash);
        break;
      }
      if (kind === 'u') {
        out += String.fromCharCode(Number.parseInt(source.slice(slash + 2, slash + 6), 16));
        i = slash + 6;
      } else {
        if (kind === '/') out += '/';
        else if (kind !== 'n' && kind !== 'r' && kind !== 't') throw new MalformedAnswerError(`unexpected escape \\${kind} in image data`);
        i = slash + 2;
      }
    }
    return /\s/.test(out) ? out.replace(/\s+/g, '') : out;
  }
}

const EMPTY = Buffer.alloc(0);
