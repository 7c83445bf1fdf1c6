/** An image sink that notes each write (its length and the memory its bytes lie in) before passing it on: the memory tests' probe. */
import type { ImageSink } from '../../src/providers/provider.js';

export interface NotedWrite {
  bytes: number;
  memory: ArrayBufferLike;
}

export function notingSink(sink: ImageSink, writes: NotedWrite[]): ImageSink {
  return {
    async open() {
      const writer = await sink.open();
      return {
        write: (bytes) => {
          writes.push({ bytes: bytes.byteLength, memory: bytes.buffer });
          return writer.write(bytes);
        },
        close: () => writer.close(),
        discard: () => writer.discard(),
      };
    },
  };
}
