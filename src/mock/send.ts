/** How the mock writes answers: JSON, and 200 bodies whole, cut or trickled. */
import type { ServerResponse } from 'node:http';
import type { Sendable } from './runtime.js';

const JSON_TYPE = 'application/json; charset=UTF-8';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': text.length, ...headers });
  res.end(text);
}

/** What a trickled body waits with: the server's sleeps, and whether it is closing. */
export interface SendPace {
  sleep(ms: number): Promise<void>;
  closing(): boolean;
}

/** See MockRuntime.sendBody. */
export function sendBody(
  res: ServerResponse,
  seq: number,
  body: Sendable,
  how: { cut: boolean; trickleMs?: number },
  pace: SendPace,
): void {
  res.writeHead(200, { 'content-type': JSON_TYPE, 'content-length': body.length, 'x-mock-seq': String(seq) });
  // One corked batch: the socket gets a single writev of the cached buffers, no copies.
  res.cork();
  if (how.cut) {
    let left = body.cutAt;
    for (const piece of body.pieces) {
      if (left <= 0) break;
      const part = piece.length <= left ? piece : piece.subarray(0, left);
      left -= part.length;
      // Destroy only once the partial body is with the kernel, so the client does get it.
      res.write(part, left <= 0 ? () => res.destroy() : undefined);
    }
    res.uncork();
  } else if (how.trickleMs !== undefined && how.trickleMs > 0) {
    res.uncork();
    void trickle(res, body.pieces, how.trickleMs, pace);
  } else {
    for (const piece of body.pieces) res.write(piece);
    res.uncork();
    res.end();
  }
}

/** Writes the body in ~20 steps spread over `ms` (a slow download, for kill and timeout tests). */
async function trickle(res: ServerResponse, pieces: readonly Buffer[], ms: number, pace: SendPace): Promise<void> {
  const body = Buffer.concat(pieces);
  const steps = 20;
  const step = Math.ceil(body.length / steps);
  for (let offset = 0; offset < body.length; offset += step) {
    if (res.destroyed || pace.closing()) return;
    res.write(body.subarray(offset, offset + step));
    await pace.sleep(ms / steps);
  }
  res.end();
}
