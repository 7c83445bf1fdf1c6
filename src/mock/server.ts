/**
 * A local endpoint of both API families for dry runs, tests and benchmarks: Gemini's
 * `generateContent` (handled here) and the OpenAI-style images endpoint (openai-images/), with
 * the links its `url` answers point at, and product photos as a shop's CDN serves them
 * (photos.ts). It answers with valid images and realistic usage, and
 * fails on request through `[mock:...]` directives in the prompt, a quota (`rps`) and a random
 * 5xx rate.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { capabilitiesOf, findModel, type ModelCapabilities } from '../providers/models.js';
import { DirectiveError, failureFor, parseDirectives, type Directives } from './directives.js';
import {
  apiKeyInvalid,
  googleError,
  invalidArgument,
  modelNotFound,
  quotaExceeded,
  unauthenticated,
  type ErrorAnswer,
} from './errors.js';
import { ImageFactory } from './images.js';
import { handleImagesRequest } from './openai-images/handler.js';
import { findImagesModel } from './openai-images/models.js';
import { LinkStore, type MockDownloadRecord } from './openai-images/links.js';
import { checkOptions, type MockOptions } from './options.js';
import { MockPhotos, PHOTO_CHANGE_PATH, PHOTO_PATH } from './photos.js';
import { TokenBucket } from './quota.js';
import { RequestLog, type MockRequestRecord } from './records.js';
import { parseGenerateRequest, promptOf } from './request.js';
import { buildAnswer, type BuiltAnswer } from './response.js';
import type { Incoming, MockRuntime, RecordFields, Sendable } from './runtime.js';

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

/** Reference images can make 20 MB of inline data, i.e. ~27 MB of base64 JSON; leave room. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

const GENERATE_PATH = /^\/v1beta\/models\/([^/]+):generateContent\/?$/;

/** Tokenhot's pages show the images path with and without a trailing slash. */
const IMAGES_PATH = /^\/v1\/images\/(generations|edits)\/?$/;

const FILE_PATH = /^\/__mock\/files\/[0-9a-f]+\.[a-z]+$/;

const JSON_TYPE = 'application/json; charset=UTF-8';

/** A model this version does not know, held to the common subset of the known ones. */
function extraModel(id: string): ModelCapabilities {
  return { ...capabilitiesOf(id), imageTokens: { '1K': 1120, '2K': 1120, '4K': 2000 } };
}

/** A malformed %-escape in a model id is the client's 404, not the mock's 500. */
function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function readBody(req: IncomingMessage): Promise<{ body: Buffer; tooLarge: boolean }> {
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

export async function startMockServer(options: MockOptions = {}): Promise<MockServer> {
  checkOptions(options);
  const log = new RequestLog(options.requestLog);
  const images = new ImageFactory(options.payload === 'real' ? 'real' : 'small');
  const links = new LinkStore();
  const photos = new MockPhotos();
  const bucket =
    options.rps !== undefined && options.rps > 0
      ? new TokenBucket(options.rps, options.burst ?? Math.max(1, options.rps))
      : undefined;
  const attempts = new Map<string, number>();
  const sleepers = new Set<() => void>();
  let seq = 0;
  let closing = false;
  // While held, generated answers wait before being sent: tests use it to kill a client at a
  // moment when no answer is on the wire.
  let held: { promise: Promise<void>; release: () => void } | undefined;
  const hold = (): void => {
    if (held) return;
    let release = (): void => undefined;
    const promise = new Promise<void>((resolve) => (release = resolve));
    held = { promise, release };
  };
  const release = (): void => {
    held?.release();
    held = undefined;
  };

  /** A delay that close() cuts short, so no timer keeps the process alive after it. */
  function sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      sleepers.add(wake);
    });
  }

  function record(incoming: Incoming, fields: RecordFields): void {
    log.add({
      seq: incoming.seq,
      family: incoming.family,
      receivedAt: incoming.receivedAt,
      answeredAt: Date.now(),
      model: incoming.model,
      prompt: incoming.prompt,
      images: [],
      thoughtImages: 0,
      ...fields,
    });
  }

  function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': text.length, ...headers });
    res.end(text);
  }

  function sendError(res: ServerResponse, incoming: Incoming | undefined, answer: ErrorAnswer): void {
    sendJson(res, answer.status, answer.body, answer.headers);
    if (incoming) record(incoming, { status: answer.status, kind: answer.kind });
  }

  /** Writes the body in ~20 steps spread over `ms` (a slow download, for kill and timeout tests). */
  async function trickle(res: ServerResponse, pieces: readonly Buffer[], ms: number): Promise<void> {
    const body = Buffer.concat(pieces);
    const steps = 20;
    const step = Math.ceil(body.length / steps);
    for (let offset = 0; offset < body.length; offset += step) {
      if (res.destroyed || closing) return;
      res.write(body.subarray(offset, offset + step));
      await sleep(ms / steps);
    }
    res.end();
  }

  function sendBody(res: ServerResponse, seq: number, body: Sendable, how: { cut: boolean; trickleMs?: number }): void {
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
      void trickle(res, body.pieces, how.trickleMs);
    } else {
      for (const piece of body.pieces) res.write(piece);
      res.uncork();
      res.end();
    }
  }

  function sendAnswer(res: ServerResponse, incoming: Incoming, answer: BuiltAnswer, cut: boolean, trickleMs?: number): void {
    sendBody(res, incoming.seq, answer, { cut, trickleMs });
    if (cut) {
      record(incoming, { status: 200, kind: 'cut', thoughtImages: answer.thoughtImages });
      return;
    }
    // Billed when the answer is generated and sent, as the real endpoint bills, whether or not
    // the client lives to read it all.
    record(incoming, {
      status: 200,
      kind: answer.kind,
      usageMetadata: answer.usageMetadata,
      images: answer.finals,
      thoughtImages: answer.thoughtImages,
    });
  }

  /**
   * Answers the failure a directive asks for this attempt ('answered'); 'cut' means an answer
   * must still be generated, to be cut; undefined means no directive failure.
   */
  function directiveFailure(
    res: ServerResponse,
    incoming: Incoming,
    directives: Directives,
    attempt: number,
  ): 'answered' | 'cut' | undefined {
    const failure = failureFor(directives, attempt);
    if (!failure) return undefined;
    if (failure.type === 'cut') return 'cut';
    if (failure.code === 429) {
      sendError(
        res,
        incoming,
        quotaExceeded({
          retryDelaySeconds: directives.retryDelaySeconds ?? 1,
          perDay: directives.perDay,
          retryAfterSeconds: directives.retryAfterSeconds,
        }),
      );
    } else if (failure.code === 401) {
      sendError(res, incoming, unauthenticated());
    } else if (failure.code === 404) {
      sendError(res, incoming, modelNotFound(incoming.model));
    } else {
      sendError(res, incoming, googleError(failure.code));
    }
    return 'answered';
  }

  async function generate(req: IncomingMessage, res: ServerResponse, incoming: Incoming, body: Buffer): Promise<void> {
    // Refusals before the body is checked still show their prompt in the log.
    const refuse = (answer: ErrorAnswer) => {
      incoming.prompt = promptOf(body);
      sendError(res, incoming, answer);
    };
    if (options.apiKey !== undefined) {
      const auth = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
      // Never echo the key: neither answer nor log mentions what was sent.
      if (!auth) return refuse(unauthenticated());
      if (auth[1] !== options.apiKey) return refuse(apiKeyInvalid());
    }
    // The product's registry knows both families; generateContent serves only Gemini's models.
    const known = findImagesModel(incoming.model) ? undefined : findModel(incoming.model);
    const model = known ?? (options.extraModels?.includes(incoming.model) ? extraModel(incoming.model) : undefined);
    if (!model || options.retiredModels?.includes(incoming.model)) return refuse(modelNotFound(incoming.model));

    const parsed = parseGenerateRequest(body, model);
    incoming.prompt = parsed.ok ? parsed.request.prompt : parsed.prompt;
    if (!parsed.ok) return sendError(res, incoming, invalidArgument(parsed.message));
    const request = parsed.request;
    let directives: Directives;
    try {
      directives = parseDirectives(request.prompt);
    } catch (error) {
      if (error instanceof DirectiveError) return sendError(res, incoming, invalidArgument(error.message));
      throw error;
    }

    // The quota is checked before the model runs: a refused request is neither billed nor
    // counted as an attempt of its prompt.
    const wait = bucket?.take() ?? 0;
    if (wait > 0) return sendError(res, incoming, quotaExceeded({ retryDelaySeconds: wait }));

    // Only prompts with failure directives need counting; a million plain prompts cost nothing.
    let failed: 'answered' | 'cut' | undefined;
    if (directives.failures.length > 0) {
      const attempt = (attempts.get(request.prompt) ?? 0) + 1;
      attempts.set(request.prompt, attempt);
      failed = directiveFailure(res, incoming, directives, attempt);
    }
    if (failed === 'answered') return;
    if (failed === undefined && options.failRate5xx && Math.random() < options.failRate5xx) {
      return sendError(res, incoming, googleError(503));
    }

    const latency =
      directives.latencyMs ?? (options.latencyMs ?? 0) + Math.random() * (options.latencyJitterMs ?? 0);
    const [answer] = await Promise.all([
      buildAnswer({
        seq: incoming.seq,
        modelId: incoming.model,
        model,
        request,
        directives,
        thoughtImages: options.thoughtImages ?? true,
        images,
      }),
      sleep(latency),
    ]);
    if (held) await held.promise;
    if (closing) return;
    if (res.destroyed || res.socket?.destroyed) {
      // The client gave up while the image was "generating" (e.g. its timeout): keep a trace,
      // with nginx's "client closed request" status, since nothing was sent.
      record(incoming, { status: 499, kind: 'error' });
      return;
    }
    sendAnswer(res, incoming, answer, failed === 'cut', directives.trickleMs);
  }

  const runtime: MockRuntime = {
    options,
    images,
    links,
    takeQuota: () => bucket?.take() ?? 0,
    attempt(key) {
      const attempt = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, attempt);
      return attempt;
    },
    sleep,
    released: () => held?.promise ?? Promise.resolve(),
    closing: () => closing,
    record,
    sendJson,
    sendBody,
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://mock').pathname;
    if (path === '/__mock/requests' && req.method === 'GET') {
      req.resume();
      return sendJson(res, 200, log.records);
    }
    if (path === '/__mock/downloads' && req.method === 'GET') {
      req.resume();
      return sendJson(res, 200, links.downloads);
    }
    if (path === '/__mock/reset' && req.method === 'POST') {
      req.resume();
      log.clear();
      attempts.clear();
      links.clear();
      photos.clear();
      return sendJson(res, 200, { ok: true });
    }
    const photo = req.method === 'GET' || req.method === 'HEAD' ? PHOTO_PATH.exec(path) : null;
    if (photo) {
      req.resume();
      return photos.serve(req, res, photo[1]!);
    }
    const photoChange = req.method === 'POST' ? PHOTO_CHANGE_PATH.exec(path) : null;
    if (photoChange) {
      req.resume();
      return sendJson(res, 200, { ok: true, version: photos.change(photoChange[1]!) });
    }
    if (path === '/__mock/photo-requests' && req.method === 'GET') {
      req.resume();
      return sendJson(res, 200, photos.requests);
    }
    if (FILE_PATH.test(path) && (req.method === 'GET' || req.method === 'HEAD')) {
      req.resume();
      return links.serve(req, res, path);
    }

    if ((path === '/__mock/hold' || path === '/__mock/release') && req.method === 'POST') {
      req.resume();
      if (path === '/__mock/hold') hold();
      else release();
      return sendJson(res, 200, { ok: true, held: held !== undefined });
    }

    if (path.startsWith('/__mock/')) {
      req.resume();
      return sendJson(res, 404, googleError(404, `Path ${req.method ?? ''} ${path} was not found.`).body);
    }

    const imagesMatch = req.method === 'POST' ? IMAGES_PATH.exec(path) : null;
    const match = req.method === 'POST' ? GENERATE_PATH.exec(path) : null;
    const incoming: Incoming = {
      seq: ++seq,
      receivedAt: Date.now(),
      family: imagesMatch || path.startsWith('/v1/') ? 'openai-images' : 'gemini',
      model: match ? safeDecode(match[1] ?? '') : '',
      prompt: '',
    };
    // Read the whole body even for errors, so keep-alive connections stay in step.
    const { body, tooLarge } = await readBody(req);
    if (incoming.family === 'openai-images') {
      const refuse = (status: number, message: string): void => {
        sendJson(res, status, { error: { message, type: 'invalid_request_error', param: null, code: null } });
        record(incoming, { status, kind: 'error' });
      };
      if (!imagesMatch) return refuse(404, `Invalid URL (${req.method ?? ''} ${path})`);
      if (tooLarge) return refuse(413, `Request payload size exceeds the limit: ${MAX_BODY_BYTES} bytes.`);
      return handleImagesRequest(runtime, req, res, incoming, body, imagesMatch[1] as 'generations' | 'edits');
    }
    if (!match) return sendError(res, incoming, googleError(404, `Path ${req.method ?? ''} ${path} was not found.`));
    if (tooLarge) {
      return sendError(res, incoming, invalidArgument(`Request payload size exceeds the limit: ${MAX_BODY_BYTES} bytes.`));
    }
    await generate(req, res, incoming, body);
  }

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

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closed: Promise<void> | undefined;

  return {
    url: `http://${urlHost}:${port}`,
    port,
    requests: log.records,
    downloads: links.downloads,
    hold,
    release,
    close() {
      // Idempotent: a test may close early and an afterEach close again.
      closed ??= (async () => {
        closing = true;
        release();
        for (const wake of [...sleepers]) wake();
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await stopped;
        await log.close();
      })();
      return closed;
    },
  };
}
