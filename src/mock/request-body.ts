/** Reading a request's body, up to a limit. */
import type { IncomingMessage } from 'node:http';

/** Reference images can make 20 MB of inline data, i.e. ~27 MB of base64 JSON; leave room. */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

export function readBody(req: IncomingMessage): Promise<{ body: Buffer; tooLarge: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // Past the limit keep reading (so the connection stays usable) but stop keeping.
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.once('end', () => resolve({ body: Buffer.concat(chunks), tooLarge: size > MAX_BODY_BYTES }));
    req.once('error', reject);
  });
}
