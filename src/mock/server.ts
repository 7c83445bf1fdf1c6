/**
 * A local endpoint of both API families for dry runs, tests and benchmarks: Gemini's
 * `generateContent` (gemini-handler.ts) and the OpenAI-style images endpoint (openai-images/),
 * with the links its `url` answers point at, and product photos as a shop's CDN serves them
 * (photos.ts). It answers with valid images and realistic usage, and fails on request through
 * `[mock:...]` directives in the prompt, a quota (`rps`) and a random 5xx rate.
 *
 * This file is the server's life: start, listen, close. Requests go through router.ts.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { googleError } from './errors.js';
import type { MockDownloadRecord } from './openai-images/links.js';
import { MockState } from './mock-state.js';
import { checkOptions, type MockOptions } from './options.js';
import type { MockRequestRecord } from './records.js';
import { createRouter, type RequestHandler } from './router.js';
import { sendJson } from './send.js';

export type { MockRequestRecord } from './records.js';
export type { MockOptions } from './options.js';
export type { MockDownloadRecord } from './openai-images/links.js';

export interface MockServer {
  /** Base URL without a path, e.g. http://127.0.0.1:PORT. */
  url: string;
  port: number;
  /** In arrival order. */
  requests: MockRequestRecord[];
  /** Every GET/HEAD of an image link (`/__mock/files/...`), in order; also `GET /__mock/downloads`. */
  downloads: MockDownloadRecord[];
  /** Holds generated answers back until `release` (also `POST /__mock/hold` and `/__mock/release`). */
  hold(): void;
  release(): void;
  /** Closes the server and every socket (keep-alive ones too). */
  close(): Promise<void>;
}

export async function startMockServer(options: MockOptions = {}): Promise<MockServer> {
  checkOptions(options);
  const state = new MockState(options);
  const server = createHttpServer(createRouter(state));
  const host = options.host ?? '127.0.0.1';
  await listen(server, options.port ?? 0, host);
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closed: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    requests: state.log.records,
    downloads: state.links.downloads,
    hold: () => state.hold.hold(),
    release: () => state.hold.release(),
    close() {
      // Idempotent: a test may close early and an afterEach close again.
      closed ??= closeServer(server, state);
      return closed;
    },
  };
}

function createHttpServer(handle: RequestHandler): Server {
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      // A bug in the mock must show as a 500, not as a hung client.
      const message = error instanceof Error ? error.message : String(error);
      if (!res.headersSent && !res.destroyed) sendJson(res, 500, googleError(500, `mock failure: ${message}`).body);
      else res.destroy();
    });
  });
  // Clients keep connections for minutes-long batches; uploads of reference images are big.
  server.keepAliveTimeout = 30_000;
  server.requestTimeout = 600_000;
  return server;
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Held answers are let go and sleeps cut short, so nothing waits on a closed server. */
async function closeServer(server: Server, state: MockState): Promise<void> {
  state.closing = true;
  state.hold.release();
  state.sleeps.wakeAll();
  const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await stopped;
  await state.log.close();
}
