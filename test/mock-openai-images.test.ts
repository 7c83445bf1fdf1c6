/**
 * The mock's OpenAI-style images endpoint over real HTTP, with plain fetch: what a provider for
 * Seedream, GPT Image and DALL-E will meet through Tokenhot (sizes per model, url or base64,
 * links that expire or break, refusals, the gateway's 429, usage shapes) and the request log a
 * test prices the answers from.
 */
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { startMockServer, type MockOptions, type MockRequestRecord, type MockServer } from '../src/mock/index.js';

interface ImageDatum {
  url?: string;
  b64_json?: string;
  size?: string;
  revised_prompt?: string;
  error?: { code: string; message: string };
}

interface ImagesAnswer {
  model?: string;
  created: number;
  data: ImageDatum[];
  usage?: Record<string, unknown>;
  [field: string]: unknown;
}

interface ErrorAnswer {
  error: { message: string; type: string; param: string | null; code: string | null };
}

const SEEDREAM_40 = 'doubao-seedream-4-0-250828';
const SEEDREAM_45 = 'doubao-seedream-4-5-251128';
const SEEDREAM_50 = 'doubao-seedream-5-0-260128';

/** design.md section 2, written out again here so the test prices answers on its own. */
const PER_IMAGE_USD: Record<string, Record<string, number>> = {
  [SEEDREAM_40]: { image: 0.03 },
  [SEEDREAM_45]: { image: 0.04 },
  [SEEDREAM_50]: { image: 0.035 },
  'dall-e-3': { '1024x1024/standard': 0.04, '1792x1024/standard': 0.08, '1024x1792/standard': 0.08, '1024x1024/hd': 0.08, '1792x1024/hd': 0.12, '1024x1792/hd': 0.12 },
  'dall-e-2': { '256x256/standard': 0.016, '512x512/standard': 0.018, '1024x1024/standard': 0.02 },
};
const PER_MILLION_TOKENS_USD: Record<string, { inputText: number; inputImage: number; outputImage: number; outputText: number }> = {
  'gpt-image-1.5': { inputText: 5, inputImage: 8, outputImage: 32, outputText: 10 },
  'gpt-image-2': { inputText: 5, inputImage: 8, outputImage: 30, outputText: 10 },
};

/** The bill of a logged request at list prices, in micro-USD, from its billing facts alone. */
function billMicroUsd(record: MockRequestRecord): number {
  const tokens = record.billing?.tokens;
  if (tokens) {
    const rate = PER_MILLION_TOKENS_USD[record.model]!;
    return tokens.inputText * rate.inputText + tokens.inputImage * rate.inputImage + tokens.outputImage * rate.outputImage + tokens.outputText * rate.outputText;
  }
  const images = record.billing?.images;
  return Math.round((images?.count ?? 0) * PER_IMAGE_USD[record.model]![images?.unit ?? '']! * 1e6);
}

const servers: MockServer[] = [];

async function start(options: MockOptions = {}): Promise<MockServer> {
  const server = await startMockServer(options);
  servers.push(server);
  return server;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function generate(server: MockServer, body: Record<string, unknown>, options: { key?: string; path?: string } = {}): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.key !== undefined) headers.authorization = `Bearer ${options.key}`;
  return fetch(`${server.url}${options.path ?? '/v1/images/generations'}`, { method: 'POST', headers, body: JSON.stringify(body) });
}

async function json<T>(response: Response): Promise<T> {
  return JSON.parse(await response.text()) as T;
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function download(url: string): Promise<{ response: Response; bytes: Buffer }> {
  const response = await fetch(url);
  return { response, bytes: Buffer.from(await response.arrayBuffer()) };
}

async function status(server: MockServer, body: Record<string, unknown>): Promise<number> {
  const response = await generate(server, body);
  await response.arrayBuffer();
  return response.status;
}

describe('images endpoint: what each model accepts', () => {
  it('takes each model\'s sizes and refuses the others with a 400 in its vendor\'s shape', async () => {
    const server = await start();
    const cases: [string, string, number][] = [
      [SEEDREAM_40, '1K', 200],
      [SEEDREAM_40, '960x960', 200], // 921,600 pixels: 4.0's lower bound
      [SEEDREAM_40, '4096x256', 200], // 16:1
      [SEEDREAM_40, '4352x256', 400], // 17:1
      [SEEDREAM_40, '3K', 400],
      [SEEDREAM_40, '2k', 400], // presets are uppercase
      [SEEDREAM_45, '1K', 400],
      [SEEDREAM_45, '960x960', 400], // 4.5 starts at 3,686,400
      [SEEDREAM_45, '2560x1440', 200],
      [SEEDREAM_45, '4097x4096', 400], // over 16,777,216
      [SEEDREAM_50, '3K', 200],
      [SEEDREAM_50, '4K', 400],
      ['gpt-image-1.5', '1536x1024', 200],
      ['gpt-image-1.5', 'auto', 200],
      ['gpt-image-1.5', '2048x1152', 400],
      ['gpt-image-2', '2048x1152', 200],
      ['gpt-image-2', '3840x2160', 200],
      ['gpt-image-2', '3856x2160', 400], // long side over 3840
      ['gpt-image-2', '1000x1000', 400], // not multiples of 16
      ['dall-e-3', '1792x1024', 200],
      ['dall-e-3', '512x512', 400],
      ['dall-e-2', '256x256', 200],
      ['dall-e-2', '1792x1024', 400],
    ];
    const got: [string, string, number][] = [];
    for (const [model, size] of cases) got.push([model, size, await status(server, { model, prompt: 'a red kite', size })]);
    expect(got).toEqual(cases);

    const seedream = await json<ErrorAnswer>(await generate(server, { model: SEEDREAM_45, prompt: 'x', size: '1K' }));
    expect(seedream.error).toMatchObject({ type: 'BadRequest', code: 'InvalidParameter', param: 'size' });
    expect(seedream.error.message).toMatch(/^The parameter `size` specified in the request is not valid: .* Request id: 021\d+/);
    const gpt = await json<ErrorAnswer>(await generate(server, { model: 'gpt-image-1.5', prompt: 'x', size: '512x512' }));
    expect(gpt.error).toEqual({
      message: "Invalid value: '512x512'. Supported values are: '1024x1024', '1536x1024', '1024x1536', 'auto'",
      type: 'invalid_request_error',
      param: 'size',
      code: 'invalid_value',
    });
    const dalle = await json<ErrorAnswer>(await generate(server, { model: 'dall-e-3', prompt: 'x', size: '512x512' }));
    expect(dalle).toEqual({
      error: {
        message: "'512x512' is not one of ['1024x1024', '1792x1024', '1024x1792'] - 'size'",
        type: 'invalid_request_error',
        param: null,
        code: null,
      },
    });
    // Refused requests are logged, unbilled.
    const refused = server.requests.filter((r) => r.status === 400);
    expect(refused.every((r) => r.family === 'openai-images' && r.kind === 'error' && r.billing === undefined)).toBe(true);
  });

  it('checks quality, n, formats, references and the model, and serves both paths', async () => {
    const server = await start({ retiredModels: ['dall-e-2'] });
    const statuses = [
      await status(server, { model: 'gpt-image-2', prompt: 'x', quality: 'ultra' }),
      await status(server, { model: 'gpt-image-2', prompt: 'x', quality: 'low' }),
      await status(server, { model: 'dall-e-3', prompt: 'x', quality: 'high' }),
      await status(server, { model: 'dall-e-3', prompt: 'x', quality: 'hd', style: 'natural' }),
      await status(server, { model: 'dall-e-3', prompt: 'x', n: 2 }),
      await status(server, { model: 'gpt-image-2', prompt: 'x', background: 'transparent' }), // not on gpt-image-2
      await status(server, { model: 'gpt-image-1.5', prompt: 'x', background: 'transparent', output_format: 'jpeg' }),
      await status(server, { model: 'gpt-image-1.5', prompt: 'x', image: 'https://example.com/a.png' }), // refs go to /edits
      await status(server, { model: SEEDREAM_40, prompt: 'x', image: Array.from({ length: 15 }, () => 'https://example.com/a.png') }),
      await status(server, { model: SEEDREAM_40, prompt: 'x', image: ['https://example.com/a.png', 'data:image/png;base64,iVBORw0KGgo='] }),
      await status(server, { model: SEEDREAM_40, prompt: 'x', image: 'file:///etc/passwd' }),
      await status(server, { model: SEEDREAM_40, prompt: '' }),
    ];
    expect(statuses).toEqual([400, 200, 400, 200, 400, 400, 400, 400, 400, 200, 400, 400]);

    const unknown = await generate(server, { model: 'gpt-image-9', prompt: 'x' });
    expect(unknown.status).toBe(404);
    expect((await json<ErrorAnswer>(unknown)).error).toMatchObject({ code: 'model_not_found', type: 'invalid_request_error' });
    // A retired model (a server option) is a model_not_found too; the trailing-slash path works.
    const retired = await generate(server, { model: 'dall-e-2', prompt: 'x' }, { path: '/v1/images/generations/' });
    expect([retired.status, (await json<ErrorAnswer>(retired)).error.code]).toEqual([404, 'model_not_found']);
    expect(await status(server, { model: 'dall-e-3', prompt: 'x', size: '1024x1024' })).toBe(200);
    expect((await generate(server, { model: 'dall-e-3', prompt: 'x' }, { path: '/v1/images/variations' })).status).toBe(404);
    // generateContent serves Gemini's models only.
    const gemini = await fetch(`${server.url}/v1beta/models/dall-e-3:generateContent`, {
      method: 'POST',
      body: JSON.stringify({ contents: [{ parts: [{ text: 'x' }] }] }),
    });
    expect(gemini.status).toBe(404);
  });
});

describe('images endpoint: answers and images', () => {
  it('answers each family in its own shape, with valid images of the asked size', async () => {
    const server = await start({ payload: 'real' });
    const seedream = await json<ImagesAnswer>(await generate(server, { model: SEEDREAM_40, prompt: 'a lighthouse', size: '1K' }));
    expect(Object.keys(seedream)).toEqual(['model', 'created', 'data', 'usage']);
    expect(seedream.model).toBe(SEEDREAM_40);
    expect(Object.keys(seedream.data[0]!)).toEqual(['url', 'size']);
    expect(seedream.data[0]?.size).toBe('1024x1024');
    expect(seedream.usage).toEqual({ generated_images: 1, output_tokens: 4096, total_tokens: 4096 });
    const link = await download(seedream.data[0]!.url!);
    expect(link.response.headers.get('content-type')).toBe('image/jpeg');
    expect(Number(link.response.headers.get('content-length'))).toBe(link.bytes.length);
    expect(link.bytes.length).toBeGreaterThan(1_000_000); // real payload size
    const meta = await sharp(link.bytes).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 1024, 1024]);
    expect(server.requests[0]?.images).toEqual([
      { mimeType: 'image/jpeg', sha256: sha256(link.bytes), bytes: link.bytes.length, delivery: 'url', path: new URL(seedream.data[0]!.url!).pathname },
    ]);

    const gpt = await json<ImagesAnswer>(
      await generate(server, { model: 'gpt-image-2', prompt: 'a fox', size: '1536x1024', quality: 'low', output_format: 'webp' }),
    );
    expect(Object.keys(gpt)).toEqual(['created', 'background', 'data', 'output_format', 'quality', 'size', 'usage']);
    expect(gpt).toMatchObject({ background: 'opaque', output_format: 'webp', quality: 'low', size: '1536x1024' });
    const webp = Buffer.from(gpt.data[0]!.b64_json!, 'base64');
    expect(webp.readUInt32LE(4)).toBe(webp.length - 8); // RIFF size right
    const webpMeta = await sharp(webp).metadata();
    expect([webpMeta.format, webpMeta.width, webpMeta.height]).toEqual(['webp', 1536, 1024]);
    await sharp(webp).raw().toBuffer();
    expect(server.requests[1]?.images[0]).toMatchObject({ mimeType: 'image/webp', sha256: sha256(webp), delivery: 'b64_json' });

    const dalle = await json<ImagesAnswer>(await generate(server, { model: 'dall-e-2', prompt: 'a cat', size: '512x512', response_format: 'b64_json' }));
    expect(Object.keys(dalle)).toEqual(['created', 'data']);
    const png = await sharp(Buffer.from(dalle.data[0]!.b64_json!, 'base64')).metadata();
    expect([png.format, png.width, png.height]).toEqual(['png', 512, 512]);
  });

  it('answers links or base64 as asked, or as a directive forces', async () => {
    const server = await start();
    const asked = async (body: Record<string, unknown>) => (await json<ImagesAnswer>(await generate(server, body))).data[0]!;
    expect(Object.keys(await asked({ model: SEEDREAM_45, prompt: 'a' }))).toEqual(['url', 'size']);
    expect(Object.keys(await asked({ model: SEEDREAM_45, prompt: 'a', response_format: 'b64_json' }))).toEqual(['b64_json', 'size']);
    expect(Object.keys(await asked({ model: 'gpt-image-1.5', prompt: 'a' }))).toEqual(['b64_json']);
    expect(Object.keys(await asked({ model: 'dall-e-3', prompt: 'a' }))).toEqual(['url', 'revised_prompt']);
    expect(Object.keys(await asked({ model: 'gpt-image-1.5', prompt: 'a [mock:as-url]' }))).toEqual(['url']);
    const forced = await asked({ model: SEEDREAM_40, prompt: 'a [mock:as-b64]', response_format: 'url' });
    expect(Object.keys(forced)).toEqual(['b64_json', 'size']);
    expect(server.requests.map((r) => r.images[0]?.delivery)).toEqual(['url', 'b64_json', 'b64_json', 'url', 'url', 'b64_json']);

    // A link's bytes are the image the log names; DALL-E's are PNG, the revised prompt is sent back.
    const dalle = await asked({ model: 'dall-e-3', prompt: 'a harbour at night', quality: 'hd', size: '1024x1792' });
    expect(dalle.revised_prompt).toMatch(/^a harbour at night, /);
    const link = await download(dalle.url!);
    expect(link.response.headers.get('content-type')).toBe('image/png');
    expect(sha256(link.bytes)).toBe(server.requests.at(-1)?.images[0]?.sha256);
    expect(new URL(dalle.url!).pathname).toMatch(/^\/__mock\/files\/[0-9a-f]+\.png$/);
  });

  it('serves reference images on /v1/images/edits as a multipart form', async () => {
    const server = await start();
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#f80' } }).png().toBuffer();
    const form = new FormData();
    form.append('model', 'gpt-image-1.5');
    form.append('prompt', 'the same mug on a table');
    form.append('quality', 'medium');
    form.append('n', '2');
    form.append('image[]', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'mug.png');
    form.append('image[]', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'mug2.png');
    const response = await fetch(`${server.url}/v1/images/edits`, { method: 'POST', body: form });
    expect(response.status).toBe(200);
    const answer = await json<ImagesAnswer>(response);
    expect(answer.data).toHaveLength(2);
    const text = Math.ceil(Buffer.byteLength('the same mug on a table') / 4);
    expect(answer.usage).toEqual({
      input_tokens: text + 2 * 388,
      input_tokens_details: { image_tokens: 2 * 388, text_tokens: text },
      output_tokens: 2 * 1056,
      total_tokens: text + 2 * 388 + 2 * 1056,
    });

    const notImage = new FormData();
    notImage.append('model', 'gpt-image-1.5');
    notImage.append('prompt', 'x');
    notImage.append('image[]', new Blob(['not an image']), 'a.txt');
    expect((await fetch(`${server.url}/v1/images/edits`, { method: 'POST', body: notImage })).status).toBe(400);
    const asJson = await generate(server, { model: 'gpt-image-1.5', prompt: 'x' }, { path: '/v1/images/edits' });
    expect(asJson.status).toBe(400);
    const seedream = new FormData();
    seedream.append('model', SEEDREAM_40);
    seedream.append('prompt', 'x');
    seedream.append('image[]', new Blob([new Uint8Array(png)]), 'a.png');
    expect((await fetch(`${server.url}/v1/images/edits`, { method: 'POST', body: seedream })).status).toBe(400);
  });
});

describe('images endpoint: links', () => {
  it('expires links: 403 with the object store\'s XML error, 404 for a link never made', async () => {
    const server = await start({ linkTtlMs: 400 });
    const seedream = await json<ImagesAnswer>(await generate(server, { model: SEEDREAM_40, prompt: 'soon gone' }));
    const dalle = await json<ImagesAnswer>(await generate(server, { model: 'dall-e-3', prompt: 'soon gone too' }));
    expect((await download(seedream.data[0]!.url!)).response.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 450));

    const expired = await download(seedream.data[0]!.url!);
    expect(expired.response.status).toBe(403);
    expect(expired.response.headers.get('content-type')).toBe('application/xml');
    expect(expired.bytes.toString()).toMatch(/<Error><Code>AccessDenied<\/Code><Message>Request has expired<\/Message>/);
    const azure = await download(dalle.data[0]!.url!);
    expect(azure.response.status).toBe(403);
    expect(azure.bytes.toString()).toContain('<Code>AuthenticationFailed</Code>');

    const never = await download(`${server.url}/__mock/files/0123456789abcdef.png`);
    expect(never.response.status).toBe(404);
    expect(never.bytes.toString()).toContain('<Code>NoSuchKey</Code>');

    // Expired from the start, on request; without the option links live on (24 h, 1 h).
    const early = await json<ImagesAnswer>(await generate(server, { model: SEEDREAM_40, prompt: 'gone [mock:link-expired]', response_format: 'b64_json' }));
    expect((await download(early.data[0]!.url!)).response.status).toBe(403);
    const lasting = await start();
    const kept = await json<ImagesAnswer>(await generate(lasting, { model: 'dall-e-3', prompt: 'kept' }));
    await new Promise((resolve) => setTimeout(resolve, 450));
    expect((await download(kept.data[0]!.url!)).response.status).toBe(200);
  });

  it('cuts a link\'s first N downloads mid-body, then serves it whole (ranges too)', async () => {
    const server = await start();
    const answer = await json<ImagesAnswer>(await generate(server, { model: SEEDREAM_45, prompt: 'flaky cdn [mock:link-cutx2]' }));
    const url = answer.data[0]!.url!;
    for (let i = 0; i < 2; i++) await expect(download(url)).rejects.toThrow();
    const whole = await download(url);
    expect(whole.response.status).toBe(200);
    expect(sha256(whole.bytes)).toBe(server.requests[0]?.images[0]?.sha256);
    expect(server.downloads.map((d) => [d.status, d.cut, d.bytesSent === whole.bytes.length])).toEqual([
      [200, true, false],
      [200, true, false],
      [200, false, true],
    ]);
    const tail = await fetch(url, { headers: { range: 'bytes=100-' } });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(whole.bytes.subarray(100))).toBe(true);
  });
});

describe('images endpoint: failures', () => {
  it('refuses per vendor on [mock:refused], unbilled', async () => {
    const server = await start();
    const refused = async (model: string, directive = '[mock:refused]') => {
      const response = await generate(server, { model, prompt: `something ${directive}` });
      return [response.status, (await json<ErrorAnswer>(response)).error] as const;
    };
    const [seedStatus, seedError] = await refused(SEEDREAM_50);
    expect(seedStatus).toBe(400);
    expect(seedError).toMatchObject({ code: 'InputTextSensitiveContentDetected', type: 'BadRequest' });
    expect((await refused(SEEDREAM_40, '[mock:refused=output]'))[1].code).toBe('OutputImageSensitiveContentDetected');
    expect((await refused('gpt-image-2'))[1]).toMatchObject({ code: 'moderation_blocked', type: 'image_generation_user_error' });
    expect((await refused('dall-e-3'))[1]).toMatchObject({ code: 'content_policy_violation', type: 'invalid_request_error', param: null });
    expect(server.requests.map((r) => [r.status, r.kind, r.billing])).toEqual(Array(4).fill([400, 'refused', undefined]));

    // Directives of the other family are refused, not ignored.
    expect((await generate(server, { model: SEEDREAM_40, prompt: 'x [mock:blocked]' })).status).toBe(400);
    const gemini = await fetch(`${server.url}/v1beta/models/gemini-3-pro-image-preview:generateContent`, {
      method: 'POST',
      body: JSON.stringify({ contents: [{ parts: [{ text: 'x [mock:as-url]' }] }] }),
    });
    expect(gemini.status).toBe(400);
  });

  it("answers the gateway's own 429 (in Chinese, no Retry-After) for the quota and [mock:429]", async () => {
    const server = await start({ rps: 1, burst: 1 });
    const [first, second] = await Promise.all([
      generate(server, { model: 'gpt-image-1.5', prompt: 'q1' }),
      generate(server, { model: 'gpt-image-1.5', prompt: 'q2' }),
    ]);
    const limited = [first, second].find((r) => r.status === 429)!;
    expect([first.status, second.status].sort()).toEqual([200, 429]);
    expect(limited.headers.get('retry-after')).toBeNull();
    expect([...limited.headers.keys()].filter((h) => h.includes('ratelimit'))).toEqual([]);
    const error = (await json<ErrorAnswer>(limited)).error;
    expect(error.message).toMatch(/^您已达到请求数限制：1分钟内最多请求60次 \(request id: \d+\)$/);
    expect(error).toMatchObject({ type: 'new_api_error', code: 'rate_limit_exceeded' });
    const logged = server.requests.find((r) => r.status === 429);
    expect([logged?.kind, logged?.billing, logged?.usage]).toEqual(['rate-limited', undefined, undefined]);

    const directive = await start();
    const once = await generate(directive, { model: 'dall-e-3', prompt: 'busy [mock:429x1]' });
    expect(once.status).toBe(429);
    expect((await json<ErrorAnswer>(once)).error.message).toContain('您已达到请求数限制：1分钟内最多请求60次');
    expect(await status(directive, { model: 'dall-e-3', prompt: 'busy [mock:429x1]' })).toBe(200);
  });

  it('runs the generic directives: 5xx, cut (unbilled)', async () => {
    const server = await start();
    const failed = await generate(server, { model: SEEDREAM_40, prompt: 'flaky [mock:503x1]' });
    expect(failed.status).toBe(503);
    expect((await json<ErrorAnswer>(failed)).error).toMatchObject({ type: 'server_error' });
    expect(await status(server, { model: SEEDREAM_40, prompt: 'flaky [mock:503x1]' })).toBe(200);

    const torn = await generate(server, { model: 'gpt-image-1.5', prompt: 'torn [mock:cutx1]' });
    expect(torn.status).toBe(200);
    await expect(torn.text()).rejects.toThrow();
    expect(await status(server, { model: 'gpt-image-1.5', prompt: 'torn [mock:cutx1]' })).toBe(200);
    expect(server.requests.map((r) => [r.kind, r.billing !== undefined])).toEqual([
      ['error', false],
      ['image', true],
      ['cut', false],
      ['image', true],
    ]);
  });

  it('checks the key the gateway way, never echoing it', async () => {
    const server = await start({ apiKey: 'right-key' });
    const missing = await generate(server, { model: 'dall-e-3', prompt: 'x' });
    expect(missing.status).toBe(401);
    expect((await json<ErrorAnswer>(missing)).error.message).toMatch(/^未提供令牌/);
    const wrong = await generate(server, { model: 'dall-e-3', prompt: 'x' }, { key: 'wrong-secret-key' });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).not.toContain('wrong-secret-key');
    expect((await generate(server, { model: 'dall-e-3', prompt: 'x' }, { key: 'right-key' })).status).toBe(200);
    expect(JSON.stringify(server.requests)).not.toContain('key');
  });
});

describe('images endpoint: usage and the bill', () => {
  it('sends each usage shape and logs what a test needs to price every answer exactly', async () => {
    const server = await start();
    const answers: ImagesAnswer[] = [];
    for (const body of [
      { model: SEEDREAM_40, prompt: 'three mugs', size: '2048x1536', n: 3 },
      { model: SEEDREAM_45, prompt: 'gateway mug [mock:gateway]' },
      { model: SEEDREAM_50, prompt: 'group [mock:group-partial]', n: 3, response_format: 'b64_json' },
      { model: 'gpt-image-1.5', prompt: 'a lamp', size: '1024x1536', quality: 'high' },
      { model: 'gpt-image-2', prompt: 'a lamp [mock:text-details]', size: '2048x1152', quality: 'auto' },
      { model: 'dall-e-3', prompt: 'a sofa', size: '1792x1024', quality: 'hd' },
      { model: 'dall-e-2', prompt: 'a rug', size: '256x256', n: 2 },
    ]) {
      const response = await generate(server, body);
      expect(response.status).toBe(200);
      answers.push(await json<ImagesAnswer>(response));
    }
    const [seedream, gateway, partial, gpt15, gpt2, dalle3, dalle2] = answers;
    expect(seedream?.usage).toEqual({ generated_images: 3, output_tokens: 3 * 12288, total_tokens: 3 * 12288 });
    expect(gateway?.usage).toEqual({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
    expect(Object.keys(gateway!.data[0]!)).toEqual(['url']); // no size
    expect(partial?.data.map((d) => (d.error ? d.error.code : 'image'))).toEqual(['image', 'image', 'OutputImageSensitiveContentDetected']);
    expect(partial?.usage).toMatchObject({ generated_images: 2 });
    expect(gpt15?.usage).toMatchObject({ output_tokens: 6240 });
    expect(gpt2?.quality).toBe('high'); // auto, resolved
    expect(gpt2?.usage?.output_tokens_details).toEqual({ image_tokens: Math.round((4160 * 2048 * 1152) / (1024 * 1024)), text_tokens: expect.any(Number) });
    expect(dalle3?.usage).toBeUndefined();
    expect(dalle2?.data).toHaveLength(2);

    const records = server.requests;
    expect(records.map((r) => [r.kind, r.billing?.images ?? 'tokens'])).toEqual([
      ['image', { count: 3, unit: 'image' }],
      ['image', { count: 1, unit: 'image' }],
      ['partial', { count: 2, unit: 'image' }],
      ['image', 'tokens'],
      ['image', 'tokens'],
      ['image', { count: 1, unit: '1792x1024/hd' }],
      ['image', { count: 2, unit: '256x256/standard' }],
    ]);
    expect(records.map((r) => [r.size, r.quality])).toEqual([
      ['2048x1536', undefined],
      ['2048x2048', undefined],
      ['2048x2048', undefined],
      ['1024x1536', 'high'],
      ['2048x1152', 'high'],
      ['1792x1024', 'hd'],
      ['256x256', 'standard'],
    ]);
    // The usage logged is the usage sent; GPT Image's tokens agree with it.
    expect(records.map((r) => r.usage)).toEqual(answers.map((a) => a.usage));
    const t = records[4]!.billing!.tokens!;
    expect(t.inputText + t.inputImage + t.outputImage + t.outputText).toBe(gpt2?.usage?.total_tokens);
    expect(t.outputText).toBeGreaterThan(0);
    // Priced from the log alone, the bill is the mock's own, to the micro-dollar.
    expect(records.map(billMicroUsd)).toEqual(records.map((r) => r.listPriceMicroUsd));
    expect(records.map((r) => r.listPriceMicroUsd)).toEqual([
      90_000,
      40_000,
      70_000,
      Math.ceil(Buffer.byteLength('a lamp') / 4) * 5 + 6240 * 32,
      billMicroUsd(records[4]!),
      120_000,
      32_000,
    ]);
    expect(records[5]?.images[0]?.sha256).toBe(sha256((await download(dalle3!.data[0]!.url!)).bytes));
  });
});
