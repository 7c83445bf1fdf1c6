/**
 * Image links (an images answer's `url`, a gateway's link in a Gemini answer) fetched into the
 * row's temporary files: over real HTTP from a small server that records what it was asked,
 * cuts downloads short, stalls, expires links and serves things that are not images.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ImageLinks } from '../src/providers/image-link.js';
import { OutputStore } from '../src/output/storage.js';
import { notingSink, type NotedWrite } from './helpers/noting-sink.js';
import type { ImageSink } from '../src/providers/provider.js';

const KEY = 'sk-link-test-key-0123456789';

let png: Buffer;
/** An image of 1.5 MB: a PNG and bytes after it (typed by its first bytes, as any image). */
let large: Buffer;
let server: Server;
let base: string;
const seen: { path: string; headers: IncomingHttpHeaders }[] = [];
/** Per path: how many of its next downloads are cut after half the body. */
const cuts = new Map<string, number>();

beforeAll(async () => {
  png = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#3a6' } }).png().toBuffer();
  large = Buffer.concat([png, randomBytes(1_500_000)]);
  server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    seen.push({ path, headers: req.headers });
    if (path.startsWith('/img/')) {
      const left = cuts.get(path) ?? 0;
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
      if (left > 0) {
        cuts.set(path, left - 1);
        res.write(png.subarray(0, png.length >> 1), () => res.destroy());
        return;
      }
      res.end(png);
    } else if (path.startsWith('/large/')) {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': large.length });
      res.end(large);
    } else if (path === '/expired') {
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
    } else if (path === '/html') {
      res.writeHead(200, { 'content-type': 'image/png' });
      res.end('<html>not an image</html>');
    } else if (path === '/moved') {
      res.writeHead(302, { location: '/img/moved' });
      res.end();
    } else if (path === '/flaky') {
      const left = cuts.get(path) ?? 0;
      cuts.set(path, left - 1);
      if (left > 0) {
        res.writeHead(503);
        res.end('busy');
      } else {
        res.writeHead(200, { 'content-type': 'image/png' });
        res.end(png);
      }
    } else if (path === '/stall') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
      res.write(png.subarray(0, 10));
      // ...and nothing more: the download's time limit must end it.
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

let dir: string;
let store: OutputStore;
let links: ImageLinks;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'thb-link-'));
  store = new OutputStore(dir, { durable: false });
  links = new ImageLinks({ apiKey: KEY, baseDelayMs: 10, timeoutMs: 2_000 });
  seen.length = 0;
  cuts.clear();
});
afterEach(async () => {
  await links.close();
  await rm(dir, { recursive: true, force: true });
});

const partials = async (): Promise<string[]> => readdir(join(dir, 'b', '.partial')).catch(() => []);

describe('fetching an image link', () => {
  it('streams the image into a temporary file, typed by its bytes, and never sends the API key', async () => {
    const result = await links.fetch(`${base}/img/a.bin?X-Tos-Signature=abc`, store.imageSink('b', 'r'));
    if (!('image' in result)) throw new Error(JSON.stringify(result));
    expect(result.image.mimeType).toBe('image/png');
    expect(await readFile(result.image.tempPath)).toEqual(png);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers.authorization).toBeUndefined();
    expect(JSON.stringify(seen[0]!.headers)).not.toContain(KEY);
  });

  it('downloads again a body cut short (twice), without a word to the endpoint', async () => {
    cuts.set('/img/cut', 2);
    const result = await links.fetch(`${base}/img/cut`, store.imageSink('b', 'r'));
    if (!('image' in result)) throw new Error(JSON.stringify(result));
    expect(await readFile(result.image.tempPath)).toEqual(png);
    expect(seen.map((s) => s.path)).toEqual(['/img/cut', '/img/cut', '/img/cut']);
    // The cut attempts left no temporary file behind.
    expect(await partials()).toHaveLength(1);
  });

  it('retries a 503 of the link host, then gives up naming the last failure', async () => {
    cuts.set('/flaky', 1);
    const ok = await links.fetch(`${base}/flaky`, store.imageSink('b', 'r'));
    expect('image' in ok).toBe(true);
    cuts.set('/flaky', 10);
    const failed = await links.fetch(`${base}/flaky`, store.imageSink('b', 'r2'));
    expect(failed).toEqual({ failed: expect.stringContaining('could not be downloaded in 4 attempts (last: HTTP 503)') });
  });

  it('fails an expired link at once: one GET, a reason that says so', async () => {
    const result = await links.fetch(`${base}/expired?Expires=1`, store.imageSink('b', 'r'));
    expect(result).toEqual({ failed: `image link ${base.slice(7)}/expired has expired or is gone (HTTP 403); links live 1 to 24 hours` });
    expect(seen).toHaveLength(1);
  });

  it('refuses bytes that are no image, whatever the Content-Type says, and leaves no file', async () => {
    const result = await links.fetch(`${base}/html`, store.imageSink('b', 'r'));
    expect(result).toEqual({ failed: expect.stringContaining('is not an image (judged by its content; it says image/png)') });
    expect(await partials()).toEqual([]);
  });

  it('refuses an image over the byte limit', async () => {
    const small = new ImageLinks({ maxBytes: 50, baseDelayMs: 10 });
    try {
      const result = await small.fetch(`${base}/img/big`, store.imageSink('b', 'r'));
      expect(result).toEqual({ failed: `image link ${base.slice(7)}/img/big is ${png.length} bytes, over the 50 bytes taken` });
      expect(seen).toHaveLength(1);
    } finally {
      await small.close();
    }
  });

  it('follows a redirect, still without the key', async () => {
    const result = await links.fetch(`${base}/moved`, store.imageSink('b', 'r'));
    expect('image' in result).toBe(true);
    expect(seen.map((s) => [s.path, s.headers.authorization])).toEqual([
      ['/moved', undefined],
      ['/img/moved', undefined],
    ]);
  });

  it('gives up on a link that stalls, within its time limit per download', async () => {
    const quick = new ImageLinks({ timeoutMs: 300, attempts: 2, baseDelayMs: 10 });
    try {
      const started = Date.now();
      const result = await quick.fetch(`${base}/stall`, store.imageSink('b', 'r'));
      expect(result).toEqual({ failed: expect.stringContaining('could not be downloaded in 2 attempts') });
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(await partials()).toEqual([]);
    } finally {
      await quick.close();
    }
  });

  it('takes a data URI given as a link, and refuses a scheme it cannot fetch', async () => {
    const data = await links.fetch(`data:image/png;base64,${png.toString('base64')}`, store.imageSink('b', 'r'));
    if (!('image' in data)) throw new Error(JSON.stringify(data));
    expect(await readFile(data.image.tempPath)).toEqual(png);
    expect(await links.fetch('file:///etc/passwd', store.imageSink('b', 'r'))).toEqual({ failed: 'the image link is a file: URL, not http(s)' });
    expect(seen).toHaveLength(0);
  });
});

describe('memory: a download is gathered in one small buffer, reused', () => {
  /** The store's sink, noting each write (test/helpers/noting-sink.ts). */
  const noting = (writes: NotedWrite[], rowId: string): ImageSink => notingSink(store.imageSink('b', rowId), writes);

  it('two 1.5 MB downloads in a row are written 256 KB at most at a time, from one buffer', async () => {
    // Chunks joined anew for each 1 MB write were garbage that outlived young collections: with
    // 32 links fetched at once, a worker's peak RSS went over 200 MB.
    const writes: { bytes: number; memory: ArrayBufferLike }[] = [];
    for (const name of ['one', 'two']) {
      const result = await links.fetch(`${base}/large/${name}.png`, noting(writes, name));
      if (!('image' in result)) throw new Error(JSON.stringify(result));
      // equals(): toEqual compares megabytes a byte at a time, slowly.
      expect((await readFile(result.image.tempPath)).equals(large)).toBe(true);
    }
    expect(writes.reduce((sum, write) => sum + write.bytes, 0)).toBe(2 * large.length);
    expect(Math.max(...writes.map((write) => write.bytes))).toBeLessThanOrEqual(256 * 1024);
    expect(new Set(writes.map((write) => write.memory)).size).toBe(1);
  });
});
