/**
 * A gateway that answers a Gemini call with the image as a link (a `fileData.fileUri` part, or a
 * Markdown image link in a text part) instead of inline data: the link is fetched like the images
 * endpoint's, without the key, and the billed answer keeps its usage either way.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OutputStore } from '../src/output/storage.js';
import { GeminiProvider } from '../src/providers/gemini/client.js';
import { ImageLinks } from '../src/providers/image-link.js';

const KEY = 'sk-gemini-link-0123456789';
const usageMetadata = { promptTokenCount: 10, candidatesTokenCount: 1130, totalTokenCount: 1140, candidatesTokensDetails: [{ modality: 'IMAGE', tokenCount: 1120 }] };

let jpeg: Buffer;
let server: Server;
let base: string;
const seen: { path: string; headers: IncomingHttpHeaders }[] = [];
/** The parts the next generateContent answer holds, given the server's base URL. */
let partsOf: (base: string) => unknown[] = () => [];

beforeAll(async () => {
  jpeg = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#c33' } }).jpeg().toBuffer();
  server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    seen.push({ path, headers: req.headers });
    if (path.startsWith('/files/')) {
      if (path.includes('gone')) {
        res.writeHead(410);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': jpeg.length });
      res.end(jpeg);
      return;
    }
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ candidates: [{ content: { role: 'model', parts: partsOf(base) }, finishReason: 'STOP' }], usageMetadata }));
    });
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
let provider: GeminiProvider;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'thb-gemini-link-'));
  store = new OutputStore(dir, { durable: false });
  links = new ImageLinks({ apiKey: KEY, baseDelayMs: 10 });
  provider = new GeminiProvider({ baseUrl: base, apiKey: KEY, timeoutMs: 5_000, responseModalities: ['TEXT', 'IMAGE'], connections: 2, links });
  seen.length = 0;
});
afterEach(async () => {
  await provider.close();
  await links.close();
  await rm(dir, { recursive: true, force: true });
});

const row = { batch: 'b', id: 'r', line: 2, prompt: 'a red square', model: 'gemini-3-pro-image-preview', referenceImages: [], tags: [], metadata: {} };

describe('a Gemini answer with its image as a link', () => {
  it('fetches a fileData.fileUri part, without the key', async () => {
    partsOf = (at) => [{ fileData: { mimeType: 'image/jpeg', fileUri: `${at}/files/a.jpg?sig=1` } }];
    const answer = await provider.generate(row, { sink: store.imageSink('b', 'r') });
    expect(answer.images.map((image) => image.mimeType)).toEqual(['image/jpeg']);
    expect(await readFile(answer.images[0]!.tempPath)).toEqual(jpeg);
    const download = seen.find((s) => s.path === '/files/a.jpg')!;
    expect(download.headers.authorization).toBeUndefined();
    expect(seen.find((s) => s.path.includes('generateContent'))!.headers.authorization).toBe(`Bearer ${KEY}`);
  });

  it('fetches a Markdown image link in a text part, and keeps the text', async () => {
    partsOf = (at) => [{ text: `Here is your image:\n\n![image](${at}/files/b.jpg)` }];
    const answer = await provider.generate(row, { sink: store.imageSink('b', 'r') });
    expect(await readFile(answer.images[0]!.tempPath)).toEqual(jpeg);
    expect(answer.texts[0]).toContain('![image]');
    expect(answer.billing.tokens?.outputImage).toBe(1120);
  });

  it('a link that is gone is a billed answer with no image, saying why', async () => {
    partsOf = (at) => [{ text: `![image](${at}/files/gone.jpg)` }];
    const answer = await provider.generate(row, { sink: store.imageSink('b', 'r') });
    expect(answer.images).toEqual([]);
    expect(answer.usage.value).toEqual(usageMetadata);
    expect(answer.problem).toMatch(/\/files\/gone\.jpg has expired or is gone \(HTTP 410\)/);
    expect(seen.filter((s) => s.path.startsWith('/files/'))).toHaveLength(1);
  });

  it('does not follow links when the answer has its image inline', async () => {
    partsOf = (at) => [{ text: `see ![x](${at}/files/c.jpg)` }, { inlineData: { mimeType: 'image/jpeg', data: jpeg.toString('base64') } }];
    const answer = await provider.generate(row, { sink: store.imageSink('b', 'r') });
    expect(answer.images).toHaveLength(1);
    expect(seen.filter((s) => s.path.startsWith('/files/'))).toEqual([]);
  });
});
