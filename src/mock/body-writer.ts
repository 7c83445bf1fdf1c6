/**
 * Answers are written as a list of buffers for one writev: JSON text around the large base64
 * image data, which goes in as the cached buffers themselves, never copied into a string.
 */

/** A body under construction: JSON text around raw base64 buffers. */
export class BodyWriter {
  readonly pieces: Buffer[] = [];
  length = 0;
  private pending = '';

  text(json: string): void {
    this.pending += json;
  }

  raw(buffers: Buffer[]): void {
    this.flush();
    for (const buffer of buffers) {
      this.pieces.push(buffer);
      this.length += buffer.length;
    }
  }

  /** Byte offset of what is written so far. */
  offset(): number {
    return this.length + Buffer.byteLength(this.pending);
  }

  flush(): void {
    if (this.pending === '') return;
    const buffer = Buffer.from(this.pending, 'utf8');
    this.pieces.push(buffer);
    this.length += buffer.length;
    this.pending = '';
  }
}
