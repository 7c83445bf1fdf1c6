/**
 * The images endpoint's provider against the mock over real HTTP: what it sends (strict, per
 * model), what it keeps from an answer (images byte for byte, base64 or link; the usage as sent;
 * the billing record), and the error kinds it makes of refusals, the gateway's 429 and the rest.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CallError } from '../src/core/errors.js';
import type { BatchRow } from '../src/core/types.js';
import { startMockServer, type MockOptions, type MockServer } from '../src/mock/index.js';
import { OutputStore } from '../src/output/storage.js';
import { ImageLinks } from '../src/providers/image-link.js';
import { OpenAiImagesProvider } from '../src/providers/openai-images/client.js';
import { rateLimitHint } from '../src/providers/openai-images/errors.js';
import { ImagesAnswerScanner } from '../src/providers/openai-images/answer.js';
import { notingSink, type NotedWrite } from './helpers/noting-sink.js';
import type { ImageSink, ProviderAnswer } from '../src/providers/provider.js';

const KEY = 'sk-images-test-0123456789abcdef';
const SEEDREAM_45 = 'doubao-seedream-4-5-251128';

let dir: string;
let store: OutputStore;
let links: ImageLinks;
const servers: (MockServer | Server)[] = [];
const providers: OpenAiImagesProvider[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'thb-images-'));
  store = new OutputStore(dir, { durable: false });
  links = new ImageLinks({ apiKey: KEY, baseDelayMs: 10 });
});
afterEach(async () => {
  await Promise.all(providers.splice(0).map((p) => p.close()));
  await links.close();
  await Promise.all(servers.splice(0).map((s) => ('requests' in s ? s.close() : new Promise((resolve) => (s.closeAllConnections(), s.close(resolve))))));
  await rm(dir, { recursive: true, force: true });
});

async function mock(options: MockOptions = {}): Promise<MockServer> {
  const server = await startMockServer({ apiKey: KEY, ...options });
  servers.push(server);
  return server;
}

function provider(baseUrl: string): OpenAiImagesProvider {
  const made = new OpenAiImagesProvider({ baseUrl, apiKey: KEY, timeoutMs: 20_000, connections: 4, links });
  providers.push(made);
  return made;
}

let rowCount = 0;
function row(model: string, prompt: string, extra: Partial<BatchRow> = {}): BatchRow {
  rowCount += 1;
  return { batch: 'b', id: `r${rowCount}`, line: rowCount + 1, prompt, model, referenceImages: [], tags: [], metadata: {}, ...extra };
}

async function generate(server: MockServer, r: BatchRow): Promise<ProviderAnswer> {
  return provider(server.url).generate(r, { sink: store.imageSink(r.batch, r.id) });
}

const sha256 = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex');

async function refusal(work: Promise<unknown>): Promise<CallError> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof CallError)) throw new Error(`expected a CallError, got ${String(error)}`);
  return error;
}

describe('a billed answer', () => {
  it('Seedream: the pixel size of the row\u2019s ratio, base64 decoded into the very bytes sent, billed one image', async () => {
    const server = await mock();
    const answer = await generate(server, row(SEEDREAM_45, 'a lighthouse at dusk', { aspectRatio: '16:9' }));
    const [record] = server.requests;
    expect(record).toMatchObject({ status: 200, model: SEEDREAM_45, size: '2848x1600', kind: 'image' });
    expect(answer.images).toHaveLength(1);
    expect(answer.images[0]!.mimeType).toBe(record!.images[0]!.mimeType);
    expect(await sha256(answer.images[0]!.tempPath)).toBe(record!.images[0]!.sha256);
    expect(record!.images[0]!.delivery).toBe('b64_json');
    expect(answer.usage).toEqual({ field: 'usage', value: record!.usage });
    expect(answer.billing).toEqual({ images: { count: 1, unit: 'image' } });
    expect(answer.billing).toEqual(record!.billing);
  });

  it('GPT Image: the size and quality asked, its tokens billed by kind as the mock bills them', async () => {
    const server = await mock();
    const answer = await generate(server, row('gpt-image-2', 'a teapot [mock:text-details]', { aspectRatio: '2:3', quality: 'medium' }));
    const [record] = server.requests;
    expect(record).toMatchObject({ status: 200, size: '1024x1536', quality: 'medium' });
    expect(answer.billing).toEqual(record!.billing);
    expect(answer.billing.tokens!.outputImage).toBeGreaterThan(0);
    expect(await sha256(answer.images[0]!.tempPath)).toBe(record!.images[0]!.sha256);
  });

  it('DALL-E 3: a link fetched at once, billed by size and quality; no usage is kept as none', async () => {
    const server = await mock();
    const answer = await generate(server, row('dall-e-3', 'a red bicycle [mock:as-url]', { aspectRatio: '16:9', quality: 'hd' }));
    const [record] = server.requests;
    expect(record!.images[0]!.delivery).toBe('url');
    expect(server.downloads.map((d) => [d.path, d.status])).toEqual([[record!.images[0]!.path, 200]]);
    expect(await sha256(answer.images[0]!.tempPath)).toBe(record!.images[0]!.sha256);
    expect(answer.billing).toEqual({ images: { count: 1, unit: '1792x1024/hd' } });
    expect(answer.billing).toEqual(record!.billing);
    expect(answer.usage).toEqual({ field: 'usage', value: {} });
  });

  it('a link cut twice mid-download is downloaded a third time: one generation, three GETs', async () => {
    const server = await mock();
    const answer = await generate(server, row(SEEDREAM_45, 'a harbour [mock:as-url][mock:link-cutx2]'));
    expect(server.requests).toHaveLength(1);
    expect(server.downloads.map((d) => d.cut)).toEqual([true, true, false]);
    expect(await sha256(answer.images[0]!.tempPath)).toBe(server.requests[0]!.images[0]!.sha256);
  });

  it('an expired link is a billed answer with no image, saying the link expired', async () => {
    const server = await mock();
    const answer = await generate(server, row(SEEDREAM_45, 'a forest [mock:as-url][mock:link-expired]'));
    expect(answer.images).toEqual([]);
    expect(answer.billing).toEqual({ images: { count: 1, unit: 'image' } });
    expect(answer.problem).toMatch(/has expired or is gone \(HTTP 403\)/);
    expect(server.downloads).toHaveLength(1);
  });

  it('Seedream with reference images sends them as data URIs; GPT Image sends them to /edits', async () => {
    const ref = join(dir, 'ref.png');
    await writeFile(ref, await sharp({ create: { width: 8, height: 8, channels: 3, background: '#09c' } }).png().toBuffer());
    const server = await mock();
    const seedream = await generate(server, row(SEEDREAM_45, 'this cat, in a hat', { referenceImages: [ref, ref] }));
    const gpt = await generate(server, row('gpt-image-1.5', 'this cat, in a hat', { referenceImages: [ref] }));
    expect([seedream.images.length, gpt.images.length]).toEqual([1, 1]);
    expect(server.requests.map((r) => r.status)).toEqual([200, 200]);
    // The edits endpoint bills the reference as image input tokens.
    expect(gpt.billing.tokens!.inputImage).toBeGreaterThan(0);
  });
});

describe('refused calls', () => {
  it('a moderation refusal fails the row with the provider\u2019s message, unbilled', async () => {
    const server = await mock();
    const error = await refusal(generate(server, row(SEEDREAM_45, 'something [mock:refused]')));
    expect(error.kind).toBe('rowFailed');
    expect(error.message).toMatch(/^refused by moderation \(HTTP 400 InputTextSensitiveContentDetected: .+\)$/);
    const gpt = await refusal(generate(server, row('gpt-image-2', 'something [mock:refused]')));
    expect(gpt.message).toMatch(/^refused by moderation \(HTTP 400 moderation_blocked/);
  });

  it('the gateway\u2019s Chinese 429 names a quota: the pace\u2019s ceiling, not a window to wait out', async () => {
    const server = await mock();
    const error = await refusal(generate(server, row('gpt-image-2', 'busy [mock:429x1]')));
    expect(error.kind).toBe('rateLimited');
    expect(error.retryAfterMs).toBeUndefined();
    const requests = Number(/at most (\d+) requests in 1 min/.exec(error.message)?.[1]);
    expect(error.namedQuota).toBeCloseTo(requests / 60, 9);
    expect(rateLimitHint('您已达到请求数限制：2分钟内最多请求100次')).toEqual({ requests: 100, perMinutes: 2 });
    expect(rateLimitHint('Rate limit reached for requests. Please try again in 6m0s.').retryAfterMs).toBe(360_000);
    expect(rateLimitHint('too many requests')).toEqual({});
  });

  it('a retired model is a row failure said as model not found; a bad key stops everything', async () => {
    const server = await mock({ retiredModels: ['dall-e-3'] });
    const retired = await refusal(generate(server, row('dall-e-3', 'x')));
    expect([retired.kind, retired.status, retired.modelNotFound]).toEqual(['rowFailed', 404, true]);
    const badKey = await refusal(new OpenAiImagesProvider({ baseUrl: server.url, apiKey: 'sk-wrong', timeoutMs: 5_000, connections: 1, links }).generate(row('gpt-image-2', 'x'), { sink: store.imageSink('b', 'k') }));
    expect(badKey.kind).toBe('fatal');
    const credits = await refusal(generate(server, row('gpt-image-2', 'x [mock:402]')));
    expect(credits.kind).toBe('fatal');
    const busy = await refusal(generate(server, row('gpt-image-2', 'x [mock:503x1]')));
    expect(busy.kind).toBe('transient');
  });

  it('never repeats the key an endpoint echoes back', async () => {
    const echo = createServer((req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `invalid token ${req.headers.authorization}`, type: 'new_api_error', code: 'invalid_api_key' } }));
    });
    servers.push(echo);
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const error = await refusal(provider(`http://127.0.0.1:${(echo.address() as AddressInfo).port}`).generate(row('gpt-image-2', 'x'), { sink: store.imageSink('b', 'e') }));
    expect(error.kind).toBe('fatal');
    expect(error.message).toContain('[redacted]');
    expect(error.message).not.toContain(KEY);
  });
});

describe('answers as gateways re-serialize them', () => {
  /** A local endpoint answering every call with `body` (a function of its own base URL). */
  async function endpoint(body: (base: string) => unknown): Promise<string> {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body(`http://${req.headers.host}`)).replace(/\//g, '\\/'));
      });
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  let png: Buffer;
  beforeEach(async () => {
    png = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#f80' } }).png().toBuffer();
  });

  it('b64_json written as a data URI (slashes escaped), usage with zeros instead of generated_images', async () => {
    const base = await endpoint(() => ({ created: 1, data: [{ b64_json: `data:image/png;base64,${png.toString('base64')}` }], usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 } }));
    const answer = await provider(base).generate(row(SEEDREAM_45, 'x'), { sink: store.imageSink('b', 'z') });
    expect(await readFile(answer.images[0]!.tempPath)).toEqual(png);
    expect(answer.images[0]!.mimeType).toBe('image/png');
    expect(answer.billing).toEqual({ images: { count: 1, unit: 'image' } });
  });

  it('a Seedream group answer whose image failed: billed, no image, the code as its reason', async () => {
    const base = await endpoint(() => ({
      data: [{ error: { code: 'OutputImageSensitiveContentDetected', message: 'The generated image may contain sensitive content.' } }],
      usage: { generated_images: 0, output_tokens: 0, total_tokens: 0 },
    }));
    const answer = await provider(base).generate(row(SEEDREAM_45, 'x'), { sink: store.imageSink('b', 'g') });
    expect(answer.images).toEqual([]);
    expect(answer.finishReason).toBe('OutputImageSensitiveContentDetected');
    expect(answer.problem).toBe('the image failed (OutputImageSensitiveContentDetected: The generated image may contain sensitive content.)');
    expect(answer.billing).toEqual({ images: { count: 0, unit: 'image' } });
  });

  it('an error answered with HTTP 200 is no billed answer; a body without data or usage is asked again', async () => {
    const refused = await endpoint(() => ({ error: { message: 'Your request was rejected by the safety system.', type: 'image_generation_user_error', code: 'moderation_blocked' } }));
    const error = await refusal(provider(refused).generate(row('gpt-image-2', 'x'), { sink: store.imageSink('b', 'h') }));
    expect([error.kind, error.message]).toEqual(['rowFailed', 'refused by moderation (HTTP 200 moderation_blocked: Your request was rejected by the safety system.)']);
    const odd = await endpoint(() => ({ created: 1 }));
    const unread = await refusal(provider(odd).generate(row('gpt-image-2', 'x'), { sink: store.imageSink('b', 'i') }));
    expect([unread.kind, unread.message]).toEqual(['transient', 'unreadable answer: the answer is not an images answer (no data, no usage)']);
  });
});


describe('memory: an answer\u2019s image is decoded through one small buffer, reused', () => {
  /** The store's sink, noting each write (test/helpers/noting-sink.ts). */
  const noting = (writes: NotedWrite[], rowId: string): ImageSink => notingSink(store.imageSink('b', rowId), writes);

  /** Pushes an answer holding `image` as b64_json: a small first piece, then the rest at once. */
  async function scan(image: Buffer, sink: ImageSink): Promise<Buffer> {
    const body = Buffer.from(`{"created":1,"data":[{"b64_json":"${image.toString('base64')}"}],"usage":{"generated_images":1}}`);
    const scanner = new ImagesAnswerScanner(sink);
    await scanner.push(body.subarray(0, 100));
    await scanner.push(body.subarray(100));
    const scanned = scanner.end();
    return readFile(scanned.images.get(0)!.tempPath);
  }

  it('3 MB of base64 in one piece is written 256 KB at most at a time, from one buffer that the next answer reuses', async () => {
    // A buffer per answer (1 MB, as before) outlived young collections and piled up as garbage
    // at 32 answers in flight; a piece too large for it was decoded into a buffer of its own.
    const writes: NotedWrite[] = [];
    const first = randomBytes(3 * 1024 * 1024);
    const second = randomBytes(1024 * 1024);
    // equals(): toEqual compares megabytes a byte at a time, slowly.
    expect((await scan(first, noting(writes, 'm1'))).equals(first)).toBe(true);
    expect((await scan(second, noting(writes, 'm2'))).equals(second)).toBe(true);
    expect(writes.reduce((sum, write) => sum + write.bytes, 0)).toBe(first.length + second.length);
    expect(Math.max(...writes.map((write) => write.bytes))).toBeLessThanOrEqual(256 * 1024);
    expect(new Set(writes.map((write) => write.memory)).size).toBe(1);
  });
});
