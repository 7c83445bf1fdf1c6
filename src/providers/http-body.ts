/** What both providers' clients share of HTTP: one connection pool, and reading error bodies. */
import { Agent } from 'undici';

/** Error bodies are small; a huge one is not worth holding. */
export const MAX_ERROR_BODY = 256 * 1024;

/**
 * A keep-alive pool to the endpoint: at least as many connections as calls in flight, and a long
 * timeout (4K images take well over a minute, from sending to the last byte).
 */
export function endpointAgent(options: { connections: number; timeoutMs: number }): Agent {
  return new Agent({
    connections: options.connections,
    keepAliveTimeout: 30_000,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    connect: { timeout: 30_000 },
  });
}

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
