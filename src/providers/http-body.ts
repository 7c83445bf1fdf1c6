/** Reading small HTTP bodies (error answers) without trusting their size. */

/** The body as text, up to `limit` bytes: an error body is small, a huge one is not worth holding. */
export async function readCapped(body: AsyncIterable<Buffer | Uint8Array> & { destroy(): void }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(Buffer.from(chunk));
    size += chunk.length;
    if (size >= limit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}
