/**
 * The mock endpoint over real HTTP: the shapes every other test and benchmark relies on.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { startMockServer, type MockOptions, type MockServer } from '../src/mock/index.js';
import type { UsageMetadata } from '../src/core/types.js';

interface Part {
  text?: string;
  thought?: boolean;
  thoughtSignature?: string;
  inlineData?: { mimeType: string; data: string };
}

interface Answer {
  candidates?: { content: { role: string; parts: Part[] }; finishReason: string; index: number }[];
  promptFeedback?: { blockReason: string };
  usageMetadata: UsageMetadata;
  modelVersion: string;
  responseId: string;
}

interface ErrorAnswer {
  error: { code: number; message: string; status: string; details?: Record<string, unknown>[] };
}

const PRO = 'gemini-3-pro-image-preview';
const FLASH = 'gemini-3.1-flash-image-preview';
const FLASH_25 = 'gemini-2.5-flash-image';

const servers: MockServer[] = [];

async function start(options: MockOptions = {}): Promise<MockServer> {
  const server = await startMockServer(options);
  servers.push(server);
  return server;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

interface CallOptions {
  model?: string;
  key?: string;
  aspectRatio?: string;
  imageSize?: string;
  references?: number;
  body?: string;
}

async function call(server: MockServer, prompt: string, options: CallOptions = {}): Promise<Response> {
  const parts: Part[] = [{ text: prompt }];
  for (let i = 0; i < (options.references ?? 0); i++) {
    parts.push({ inlineData: { mimeType: 'image/png', data: Buffer.from(`ref ${i}`).toString('base64') } });
  }
  const imageConfig: Record<string, string> = {};
  if (options.aspectRatio) imageConfig.aspectRatio = options.aspectRatio;
  if (options.imageSize) imageConfig.imageSize = options.imageSize;
  const body =
    options.body ??
    JSON.stringify({
      contents: [{ role: 'user', parts }],
      generationConfig: { responseModalities: ['TEXT', 'IMAGE'], imageConfig },
    });
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.key !== undefined) headers.authorization = `Bearer ${options.key}`;
  return fetch(`${server.url}/v1beta/models/${options.model ?? PRO}:generateContent/`, { method: 'POST', headers, body });
}

async function json<T>(response: Response): Promise<T> {
  return JSON.parse(await response.text()) as T;
}

function imageParts(answer: Answer): Part[] {
  return (answer.candidates?.[0]?.content.parts ?? []).filter((p) => p.inlineData);
}

function sha256(data: string): string {
  return createHash('sha256').update(Buffer.from(data, 'base64')).digest('hex');
}

describe('mock server: auth and validation', () => {
  it('answers 401 without a key and API_KEY_INVALID for a wrong one, never echoing it', async () => {
    const server = await start({ apiKey: 'right-key' });
    const missing = await call(server, 'a cat');
    expect(missing.status).toBe(401);
    expect((await json<ErrorAnswer>(missing)).error.status).toBe('UNAUTHENTICATED');

    const wrong = await call(server, 'a cat', { key: 'wrong-secret-key' });
    expect(wrong.status).toBe(400);
    const text = await wrong.text();
    expect(text).not.toContain('wrong-secret-key');
    const error = (JSON.parse(text) as ErrorAnswer).error;
    expect(error.status).toBe('INVALID_ARGUMENT');
    expect(error.details).toEqual([
      { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com' },
    ]);

    expect((await call(server, 'a cat', { key: 'right-key' })).status).toBe(200);
    expect(server.requests.map((r) => [r.status, r.kind])).toEqual([
      [401, 'error'],
      [400, 'error'],
      [200, 'image'],
    ]);
    expect(JSON.stringify(server.requests)).not.toContain('key');
    expect(server.requests[0]?.prompt).toBe('a cat');
  });

  it('knows the models (with or without -preview) and checks the request', async () => {
    const server = await start();
    const unknown = await call(server, 'x', { model: 'gemini-9-ultra' });
    expect(unknown.status).toBe(404);
    const error = (await json<ErrorAnswer>(unknown)).error;
    expect(error).toMatchObject({ code: 404, status: 'NOT_FOUND' });
    expect(error.message).toMatch(/^models\/gemini-9-ultra is not found/);

    expect((await call(server, 'x', { model: 'gemini-3-pro-image' })).status).toBe(200);
    expect((await fetch(`${server.url}/v1beta/other`, { method: 'POST', body: '{}' })).status).toBe(404);
    expect((await call(server, 'x', { body: '{not json' })).status).toBe(400);
    expect((await call(server, 'x', { aspectRatio: '1:8' })).status).toBe(400); // 3.1 flash only
    expect((await call(server, 'x', { model: FLASH, aspectRatio: '1:8' })).status).toBe(200);
    expect((await call(server, 'x', { imageSize: '1k' })).status).toBe(400); // uppercase K
    expect((await call(server, 'x', { model: FLASH_25, imageSize: '1K' })).status).toBe(400);
    const bad = await call(server, 'x', { imageSize: '512' }); // 3.1 flash only
    expect((await json<ErrorAnswer>(bad)).error.status).toBe('INVALID_ARGUMENT');
    expect((await call(server, 'x [mock:nonsense]')).status).toBe(400);
  });
});

describe('mock server: images and usage', () => {
  it('sends thought images before a unique final JPEG for Gemini 3 Pro, with usage that adds up', async () => {
    const server = await start();
    const prompt = 'a lighthouse at dusk, oil painting';
    const response = await call(server, prompt, { aspectRatio: '16:9', imageSize: '2K' });
    expect(response.status).toBe(200);
    const raw = await response.text();
    // `thought` comes after the image data in the JSON text, as the real endpoint sends it.
    expect(raw).toMatch(/"inlineData":\{"mimeType":"image\/jpeg","data":"[A-Za-z0-9+/=]+"\},"thought":true,"thoughtSignature":"/);
    const answer = JSON.parse(raw) as Answer;
    const parts = answer.candidates?.[0]?.content.parts ?? [];
    expect(parts.map((p) => [p.inlineData ? 'image' : 'text', p.thought === true])).toEqual([
      ['text', true],
      ['image', true],
      ['image', true],
      ['text', false],
      ['image', false],
    ]);
    const [thought1, thought2, final] = imageParts(answer);
    expect(final?.thoughtSignature).toBeTruthy();
    expect(thought1?.thoughtSignature).toBeTruthy();
    expect(final?.inlineData?.mimeType).toBe('image/jpeg');
    const finalData = final?.inlineData?.data ?? '';
    expect(thought1?.inlineData?.data.length).toBeLessThan(finalData.length);
    expect(sha256(thought2?.inlineData?.data ?? '')).not.toBe(sha256(finalData));

    const meta = await sharp(Buffer.from(finalData, 'base64')).metadata();
    expect(meta.format).toBe('jpeg');
    expect((meta.width ?? 0) / (meta.height ?? 1)).toBeCloseTo(16 / 9, 1);
    await sharp(Buffer.from(finalData, 'base64')).raw().toBuffer(); // decodes fully

    const usage = answer.usageMetadata;
    const promptTokens = Math.ceil(Buffer.byteLength(prompt) / 4);
    expect(usage.promptTokenCount).toBe(promptTokens);
    expect(usage.promptTokensDetails).toEqual([{ modality: 'TEXT', tokenCount: promptTokens }]);
    expect(usage.candidatesTokensDetails).toEqual([{ modality: 'IMAGE', tokenCount: 1120 }]);
    const text = (usage.candidatesTokenCount ?? 0) - 1120;
    expect(text).toBeGreaterThanOrEqual(8);
    expect(text).toBeLessThanOrEqual(40);
    expect(usage.thoughtsTokenCount).toBeGreaterThanOrEqual(100);
    expect(usage.thoughtsTokenCount).toBeLessThanOrEqual(600);
    expect(usage.totalTokenCount).toBe(promptTokens + (usage.candidatesTokenCount ?? 0) + (usage.thoughtsTokenCount ?? 0));
    expect(answer.modelVersion).toBe(PRO);

    const [record] = server.requests;
    expect(record).toMatchObject({ seq: 1, model: PRO, prompt, status: 200, kind: 'image', thoughtImages: 2 });
    expect(record?.usageMetadata).toEqual(usage);
    expect(record?.images).toEqual([
      { mimeType: 'image/jpeg', sha256: sha256(finalData), bytes: Buffer.from(finalData, 'base64').length },
    ]);

    // Same prompt again: same usage, different bytes, so mix-ups between answers show.
    const again = await json<Answer>(await call(server, prompt, { aspectRatio: '16:9', imageSize: '2K' }));
    expect(again.usageMetadata).toEqual(usage);
    expect(server.requests[1]?.images[0]?.sha256).not.toBe(record?.images[0]?.sha256);
  });

  it('answers PNG for flash models; 2.5 flash has no thought parts and no thoughts tokens', async () => {
    const server = await start();
    const flash = await json<Answer>(await call(server, 'a fox', { model: FLASH, imageSize: '512' }));
    const flashImages = imageParts(flash);
    expect(flashImages.map((p) => [p.inlineData?.mimeType, p.thought === true])).toEqual([
      ['image/png', true],
      ['image/png', true],
      ['image/png', false],
    ]);
    expect(flash.usageMetadata.candidatesTokensDetails).toEqual([{ modality: 'IMAGE', tokenCount: 747 }]);

    const old = await json<Answer>(await call(server, 'a fox', { model: FLASH_25 }));
    const parts = old.candidates?.[0]?.content.parts ?? [];
    expect(parts.some((p) => p.thought || p.thoughtSignature)).toBe(false);
    const data = imageParts(old)[0]?.inlineData?.data ?? '';
    expect((await sharp(Buffer.from(data, 'base64')).metadata()).format).toBe('png');
    expect(old.usageMetadata.thoughtsTokenCount).toBeUndefined();
    expect(old.usageMetadata.totalTokenCount).toBe(
      (old.usageMetadata.promptTokenCount ?? 0) + (old.usageMetadata.candidatesTokenCount ?? 0),
    );
    expect(server.requests[1]?.images[0]?.sha256).toBe(sha256(data));
  });

  it('counts reference images as prompt tokens and honours thoughtImages: false', async () => {
    const server = await start({ thoughtImages: false });
    const answer = await json<Answer>(await call(server, 'edit this', { references: 2 }));
    expect(answer.usageMetadata.promptTokenCount).toBe(3 + 2 * 560);
    expect(answer.usageMetadata.promptTokensDetails).toEqual([
      { modality: 'TEXT', tokenCount: 3 },
      { modality: 'IMAGE', tokenCount: 1120 },
    ]);
    expect(imageParts(answer)).toHaveLength(1);
    expect(server.requests[0]?.thoughtImages).toBe(0);
  });

  it('pads real payloads to about 5 MB of base64 at 2K, still decodable', async () => {
    const server = await start({ payload: 'real' });
    const answer = await json<Answer>(await call(server, 'big one', { imageSize: '2K' }));
    const [thought, , final] = imageParts(answer);
    const data = final?.inlineData?.data ?? '';
    expect(data.length).toBeGreaterThan(4_500_000);
    expect(data.length).toBeLessThan(5_500_000);
    expect(thought?.inlineData?.data.length).toBeLessThan(data.length / 2);
    const meta = await sharp(Buffer.from(data, 'base64')).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 2048, 2048]);
    expect(server.requests[0]?.images[0]?.sha256).toBe(sha256(data));
  });
});

describe('mock server: directives', () => {
  it('blocks and refuses images, billed', async () => {
    const server = await start();
    const blocked = await json<Answer>(await call(server, 'bad [mock:blocked]'));
    expect(blocked.candidates).toBeUndefined();
    expect(blocked.promptFeedback).toEqual({ blockReason: 'PROHIBITED_CONTENT' });
    expect(blocked.usageMetadata.totalTokenCount).toBe(blocked.usageMetadata.promptTokenCount);

    const refused = await json<Answer>(await call(server, 'meh [mock:no-image]'));
    expect(refused.candidates?.[0]?.finishReason).toBe('IMAGE_SAFETY');
    expect(imageParts(refused)).toHaveLength(0);
    const u = refused.usageMetadata;
    expect(u.totalTokenCount).toBe((u.promptTokenCount ?? 0) + (u.candidatesTokenCount ?? 0) + (u.thoughtsTokenCount ?? 0));

    const noImage = await json<Answer>(await call(server, 'meh [mock:no-image=NO_IMAGE]', { model: FLASH_25 }));
    expect(noImage.candidates?.[0]?.finishReason).toBe('NO_IMAGE');

    expect(server.requests.map((r) => [r.kind, r.usageMetadata !== undefined, r.images.length])).toEqual([
      ['blocked', true, 0],
      ['no-image', true, 0],
      ['no-image', true, 0],
    ]);
  });

  it('sends two images, all-thought images and text details on request', async () => {
    const server = await start();
    const two = await json<Answer>(await call(server, 'pair [mock:two-images]'));
    expect(imageParts(two).filter((p) => !p.thought)).toHaveLength(2);
    expect(two.usageMetadata.candidatesTokensDetails).toEqual([{ modality: 'IMAGE', tokenCount: 2240 }]);
    expect(server.requests[0]?.images).toHaveLength(2);

    const allThought = await json<Answer>(await call(server, 'odd [mock:all-thought]'));
    const images = imageParts(allThought);
    expect(images.every((p) => p.thought === true)).toBe(true);
    expect(server.requests[1]?.images[0]?.sha256).toBe(sha256(images.at(-1)?.inlineData?.data ?? ''));

    const details = await json<Answer>(await call(server, 'd [mock:text-details]'));
    const text = (details.usageMetadata.candidatesTokenCount ?? 0) - 1120;
    expect(details.usageMetadata.candidatesTokensDetails).toEqual([
      { modality: 'TEXT', tokenCount: text },
      { modality: 'IMAGE', tokenCount: 1120 },
    ]);
  });

  it('fails the first N attempts of a prompt with 5xx, then answers', async () => {
    const server = await start();
    const prompt = 'flaky [mock:503x2]';
    const first = await call(server, prompt);
    expect(first.status).toBe(503);
    expect(await json<ErrorAnswer>(first)).toEqual({
      error: { code: 503, message: expect.stringContaining('overloaded'), status: 'UNAVAILABLE' },
    });
    expect((await call(server, prompt)).status).toBe(503);
    expect((await call(server, prompt)).status).toBe(200);
    expect((await call(server, 'other [mock:500x1]')).status).toBe(500);
    expect(server.requests.map((r) => r.kind)).toEqual(['error', 'error', 'image', 'error']);
    expect(server.requests.filter((r) => r.usageMetadata).length).toBe(1);
  });

  it('answers 429 with QuotaFailure and RetryInfo, or Retry-After', async () => {
    const server = await start();
    const first = await call(server, 'busy [mock:429x1]');
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBeNull();
    expect((await json<ErrorAnswer>(first)).error).toMatchObject({
      code: 429,
      status: 'RESOURCE_EXHAUSTED',
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
          violations: [
            {
              quotaMetric: 'generativelanguage.googleapis.com/generate_content_requests',
              quotaId: 'GenerateRequestsPerMinutePerProjectPerModel',
            },
          ],
        },
        { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '1s' },
      ],
    });
    expect((await call(server, 'busy [mock:429x1]')).status).toBe(200);

    const daily = await json<ErrorAnswer>(await call(server, 'day [mock:429x1][mock:perday][mock:retry=2.5s]'));
    expect(JSON.stringify(daily)).toContain('GenerateRequestsPerDayPerProjectPerModel');
    expect(daily.error.details?.[1]).toEqual({ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '2.5s' });

    const header = await call(server, 'hdr [mock:429x1][mock:retry-after=3]');
    expect(header.headers.get('retry-after')).toBe('3');
    expect((await json<ErrorAnswer>(header)).error.details).toHaveLength(1);
    expect(server.requests.filter((r) => r.kind === 'rate-limited')).toHaveLength(3);
  });

  it('runs failure directives in order and honours a 402/403', async () => {
    const server = await start();
    const prompt = 'seq [mock:429x1][mock:503x1]';
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await call(server, prompt)).status);
    expect(statuses).toEqual([429, 503, 200]);
    expect((await json<ErrorAnswer>(await call(server, 'x [mock:402]'))).error.status).toBe('PAYMENT_REQUIRED');
    expect((await json<ErrorAnswer>(await call(server, 'x [mock:403]'))).error.status).toBe('PERMISSION_DENIED');
    expect((await json<ErrorAnswer>(await call(server, 'x [mock:400]'))).error.status).toBe('INVALID_ARGUMENT');
  });

  it('cuts the body inside the final image, unbilled, once per N', async () => {
    const server = await start();
    const response = await call(server, 'torn [mock:cutx1]');
    expect(response.status).toBe(200);
    const expected = Number(response.headers.get('content-length'));
    await expect(response.text()).rejects.toThrow();
    expect(expected).toBeGreaterThan(1000);
    expect(server.requests[0]).toMatchObject({ kind: 'cut', status: 200, images: [] });
    expect(server.requests[0]?.usageMetadata).toBeUndefined();
    expect((await call(server, 'torn [mock:cutx1]')).status).toBe(200);
    expect(server.requests[1]?.kind).toBe('image');
  });
});

describe('mock server: quota, latency, log and lifecycle', () => {
  it('refuses requests over the rps quota with a RetryInfo delay, unbilled', async () => {
    // rps 1: a third request would need a second of spread to get in, far more than this takes.
    const server = await start({ rps: 1, burst: 2 });
    const statuses = await Promise.all(Array.from({ length: 5 }, (_, i) => call(server, `q${i}`)));
    const limited = statuses.filter((r) => r.status === 429);
    expect(statuses.filter((r) => r.status === 200)).toHaveLength(2);
    expect(limited).toHaveLength(3);
    const error = (await json<ErrorAnswer>(limited[0] as Response)).error;
    const retry = error.details?.find((d) => d['@type'] === 'type.googleapis.com/google.rpc.RetryInfo');
    expect(String(retry?.retryDelay)).toMatch(/^(0\.\d{1,3}|1)s$/);
    await Promise.all(statuses.filter((r) => r.status === 200).map((r) => r.text()));
    const rateLimited = server.requests.filter((r) => r.kind === 'rate-limited');
    expect(rateLimited).toHaveLength(3);
    expect(rateLimited.every((r) => r.usageMetadata === undefined)).toBe(true);
    // Arrival order, whatever order the answers finished in.
    expect(server.requests.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('waits the latency, serves the log over HTTP and resets it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mock-log-'));
    try {
      const logPath = join(dir, 'requests.jsonl');
      const server = await start({ latencyMs: 150, requestLog: logPath });
      const started = Date.now();
      expect((await call(server, 'slow')).status).toBe(200);
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
      expect((await call(server, 'fast [mock:latency=0]')).status).toBe(200);

      const listed = (await (await fetch(`${server.url}/__mock/requests`)).json()) as { prompt: string }[];
      expect(listed.map((r) => r.prompt)).toEqual(['slow', 'fast [mock:latency=0]']);
      const record = server.requests[0];
      expect((record?.answeredAt ?? 0) - (record?.receivedAt ?? 0)).toBeGreaterThanOrEqual(140);

      expect((await fetch(`${server.url}/__mock/reset`, { method: 'POST' })).status).toBe(200);
      expect(server.requests).toHaveLength(0);
      await server.close();
      const lines = (await readFile(logPath, 'utf8')).trim().split('\n');
      expect(lines.map((l) => (JSON.parse(l) as { kind: string }).kind)).toEqual(['image', 'image']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('closes promptly with requests in flight', async () => {
    const server = await start({ latencyMs: 30_000 });
    const pending = call(server, 'never answered').catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await pending).toBeInstanceOf(Error);
  });
});
