/**
 * Bytes: csv-parse decodes invalid UTF-8 into U+FFFD without a word, and happily parses binary
 * files, so a guard in front of it checks the bytes and knows the line of a bad one.
 */
import { isAscii } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';
import { sniffImageMime } from './image-type.js';
import { CsvFileError } from './problems.js';

function looksLike(head: Uint8Array): string | undefined {
  if (head[0] === 0xff && head[1] === 0xfe) return 'is UTF-16 text; save it as UTF-8 (in Excel: "CSV UTF-8")';
  if (head[0] === 0xfe && head[1] === 0xff) return 'is UTF-16 text; save it as UTF-8 (in Excel: "CSV UTF-8")';
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) {
    return 'is a ZIP file (an Excel workbook?), not a CSV; export it as "CSV UTF-8"';
  }
  const image = sniffImageMime(head);
  if (image) return `is an image (${image}), not a CSV`;
  return undefined;
}

/**
 * Passes bytes through unchanged after checking they are UTF-8 text: throws CsvFileError naming
 * the line of the first invalid byte, or of a NUL byte (binary data, never in a text CSV).
 */
export class Utf8Guard extends Transform {
  private line = 1;
  private previousWasCr = false;
  /** Continuation bytes still expected by the current multi-byte sequence. */
  private need = 0;
  /** Allowed range of the next continuation byte (narrower right after some lead bytes). */
  private lo = 0x80;
  private hi = 0xbf;
  private lead = 0;
  private first = true;

  constructor(private readonly file: string) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const error = this.check(chunk);
    if (error) callback(error);
    else callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.need > 0) callback(this.fail('not UTF-8 text: the file ends in the middle of a character'));
    else callback();
  }

  private fail(reason: string): CsvFileError {
    return new CsvFileError(this.file, reason, this.line);
  }

  private check(bytes: Buffer): CsvFileError | undefined {
    if (this.first) {
      this.first = false;
      const what = looksLike(bytes.subarray(0, 64));
      if (what) return new CsvFileError(this.file, what);
    }
    // The usual chunk: ASCII with LF line ends, checked and counted by native scans instead of
    // a loop over every byte.
    if (this.need === 0 && bytes.indexOf(0x0d) === -1 && bytes.indexOf(0x00) === -1 && isAscii(bytes)) {
      let at = bytes.indexOf(0x0a);
      if (at === 0 && this.previousWasCr) at = bytes.indexOf(0x0a, 1);
      while (at !== -1) {
        this.line++;
        at = bytes.indexOf(0x0a, at + 1);
      }
      if (bytes.length > 0) this.previousWasCr = false;
      return undefined;
    }
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i] ?? 0;
      if (this.need > 0) {
        // The byte named is the sequence's lead byte: that is the one a Latin-1 file got wrong.
        if (b < this.lo || b > this.hi) return this.invalid(this.lead);
        this.need--;
        this.lo = 0x80;
        this.hi = 0xbf;
        continue;
      }
      if (b === 0x00) return this.fail('has NUL bytes, so it is a binary file, not a text CSV');
      if (b < 0x80) {
        // Lines as an editor numbers them: CRLF, LF and a lone CR each end one.
        if (b === 0x0d || (b === 0x0a && !this.previousWasCr)) this.line++;
        this.previousWasCr = b === 0x0d;
        continue;
      }
      this.previousWasCr = false;
      this.lead = b;
      // Lead bytes; the narrowed ranges exclude overlong forms, surrogates and code points > U+10FFFF.
      if (b >= 0xc2 && b <= 0xdf) this.need = 1;
      else if (b === 0xe0) [this.need, this.lo] = [2, 0xa0];
      else if (b === 0xed) [this.need, this.hi] = [2, 0x9f];
      else if (b >= 0xe1 && b <= 0xef) this.need = 2;
      else if (b === 0xf0) [this.need, this.lo] = [3, 0x90];
      else if (b === 0xf4) [this.need, this.hi] = [3, 0x8f];
      else if (b >= 0xf1 && b <= 0xf3) this.need = 3;
      else return this.invalid(b);
    }
    return undefined;
  }

  private invalid(b: number): CsvFileError {
    const hex = b.toString(16).padStart(2, '0');
    return this.fail(`not UTF-8 text (byte 0x${hex}); save the file as UTF-8 (in Excel: "CSV UTF-8")`);
  }
}
