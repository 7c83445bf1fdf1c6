/**
 * Reading generateContent answers as they stream: every response shape the endpoint sends, cut
 * into chunks at every awkward place, must give the same images byte for byte and the same fields.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readAnswer } from '../src/providers/gemini/answer.js';
import { AnswerScanner, Base64StreamDecoder, MalformedAnswerError } from '../src/providers/gemini/answer-stream.js';
import { OutputStore } from '../src/output/storage.js';

let dir: string;
let store: OutputStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'thb-answer-'));
  store = new OutputStore(dir, { durable: false });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bytes = (seed: number, length: number): Buffer => Buffer.from(Array.from({ length }, (_, i) => (i * 31 + seed * 7) % 256));

async function scan(body: string, chunkSizes: number[] = [65536]) {
  const scanner = new AnswerScanner(store.imageSink('b', 'row'));
  const buffer = Buffer.from(body, 'utf8');
  let offset = 0;
  let index = 0;
  while (offset < buffer.length) {
    const size = chunkSizes[index++ % chunkSizes.length]!;
    await scanner.push(buffer.subarray(offset, offset + size));
    offset += size;
  }
  return readAnswer(scanner.end());
}

async function partialFiles(): Promise<string[]> {
  return readdir(join(dir, 'b', '.partial')).catch(() => []);
}

const usage = {
  promptTokenCount: 12,
  candidatesTokenCount: 1140,
  thoughtsTokenCount: 300,
  totalTokenCount: 1452,
  candidatesTokensDetails: [{ modality: 'IMAGE', tokenCount: 1120 }],
};

function answer(parts: unknown[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ candidates: [{ content: { role: 'model', parts }, finishReason: 'STOP', index: 0 }], usageMetadata: usage, modelVersion: 'm', ...extra });
}

const image = (data: Buffer, mimeType = 'image/jpeg', extra: Record<string, unknown> = {}) => ({ inlineData: { mimeType, data: data.toString('base64') }, ...extra });

describe('reading an answer as it streams', () => {
  const thought1 = bytes(1, 1000);
  const thought2 = bytes(2, 2001);
  const final = bytes(3, 50_000);
  const gemini3 = answer([
    { text: 'thinking about it', thought: true },
    image(thought1, 'image/jpeg', { thought: true, thoughtSignature: 'c2ln' }),
    { thought: true, ...image(thought2) },
    { text: 'Here is your mug.' },
    image(final, 'image/jpeg', { thoughtSignature: 'c2lnMg==' }),
  ]);

  it.each([[[65536]], [[1]], [[3, 7, 1, 4096]], [[5000, 2]]])('keeps only the final image, byte for byte, with chunks of %j', async (chunks) => {
    const result = await scan(gemini3, chunks);
    expect(result.images).toHaveLength(1);
    expect(result.images[0]!.mimeType).toBe('image/jpeg');
    expect(await readFile(result.images[0]!.tempPath)).toEqual(final);
    expect(result.texts).toEqual(['Here is your mug.']);
    expect(result.finishReason).toBe('STOP');
    expect(result.usage.value).toEqual(usage);
    // The thought images were written while streaming and removed once known to be thoughts.
    expect(await partialFiles()).toHaveLength(1);
  });

  it.each([[[65536]], [[3, 7, 1, 4096]]])('reads a body that ends in a newline after its last bracket (as servers send it), chunks of %j', async (chunks) => {
    const result = await scan(`${gemini3}\n`, chunks);
    expect(result.images).toHaveLength(1);
    expect(result.texts).toEqual(['Here is your mug.']);
    expect(result.usage.value).toEqual(usage);
  });

  it('decodes an image of several megabytes cut at random places, across the decoder\'s buffer', async () => {
    const big = Buffer.from(Array.from({ length: 3_500_017 }, (_, i) => (i * 7919 + (i >> 8)) % 256));
    let seed = 42;
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const sizes = Array.from({ length: 200 }, () => 1 + Math.floor(random() * 300_000));
    const result = await scan(answer([image(thought1, 'image/jpeg', { thought: true }), image(big, 'image/png')]), sizes);
    expect(result.images).toHaveLength(1);
    expect(result.images[0]!.bytes).toBe(big.length);
    expect((await readFile(result.images[0]!.tempPath)).equals(big)).toBe(true);
  });

  it('keeps two final images in order', async () => {
    const second = bytes(9, 777);
    const result = await scan(answer([image(final, 'image/png'), { text: 'two' }, image(second, 'image/png')]), [999]);
    expect(result.images.map((i) => i.bytes)).toEqual([final.length, second.length]);
    expect(await readFile(result.images[1]!.tempPath)).toEqual(second);
  });

  it('takes the last image when every image part is marked thought (known bug)', async () => {
    const result = await scan(answer([image(thought1, 'image/png', { thought: true }), image(final, 'image/png', { thought: true })]), [10]);
    expect(result.images).toHaveLength(1);
    expect(await readFile(result.images[0]!.tempPath)).toEqual(final);
    expect(await partialFiles()).toHaveLength(1);
  });

  it('reads a blocked prompt: no candidates, a block reason, usage kept', async () => {
    const body = JSON.stringify({ promptFeedback: { blockReason: 'PROHIBITED_CONTENT' }, usageMetadata: { promptTokenCount: 9, totalTokenCount: 9 } });
    const result = await scan(body);
    expect(result.images).toEqual([]);
    expect(result.blockReason).toBe('PROHIBITED_CONTENT');
    expect(result.usage.value).toEqual({ promptTokenCount: 9, totalTokenCount: 9 });
  });

  it('reads an answer with no image: text and finishReason', async () => {
    const body = JSON.stringify({
      candidates: [{ content: { parts: [{ text: 'I cannot draw that.' }] }, finishReason: 'IMAGE_SAFETY' }],
      usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 6, totalTokenCount: 15 },
    });
    const result = await scan(body, [4]);
    expect(result.images).toEqual([]);
    expect(result.finishReason).toBe('IMAGE_SAFETY');
    expect(result.texts).toEqual(['I cannot draw that.']);
  });

  it('keeps other fields exact: escapes, unicode, keys named data elsewhere', async () => {
    const body = answer([{ text: 'quote " backslash \\ 日本語 \n newline' }, { data: 'not an image' }, image(final)], { data: { inlineData: 'x' } });
    const result = await scan(body, [2, 3]);
    expect(result.texts).toEqual(['quote " backslash \\ 日本語 \n newline']);
    expect(await readFile(result.images[0]!.tempPath)).toEqual(final);
  });

  it('undoes JSON escapes inside the base64 (\\/ and \\u)', async () => {
    const base64 = final.toString('base64');
    const escaped = base64.replace(/\//g, '\\/').replace(/A/g, '\\u0041');
    const body = `{"candidates":[{"content":{"parts":[{"inlineData":{"mimeType":"image/png","data":"${escaped}"}}]}}],"usageMetadata":{}}`;
    const result = await scan(body, [1, 2, 5]);
    expect(await readFile(result.images[0]!.tempPath)).toEqual(final);
  });

  it('accepts snake_case inline_data', async () => {
    const body = JSON.stringify({ candidates: [{ content: { parts: [{ inline_data: { mime_type: 'image/png', data: final.toString('base64') } }] } }] });
    const result = await scan(body);
    expect(result.images[0]!.mimeType).toBe('image/png');
    expect(await readFile(result.images[0]!.tempPath)).toEqual(final);
  });

  it('calls a body cut short malformed, and discard leaves no file', async () => {
    const scanner = new AnswerScanner(store.imageSink('b', 'row'));
    await scanner.push(Buffer.from(gemini3.slice(0, gemini3.length - 20_000)));
    expect(() => scanner.end()).toThrow(MalformedAnswerError);
    await scanner.discard();
    expect(await partialFiles()).toEqual([]);
  });

  it('keeps reading a billed answer when an image cannot be saved, so its usage still reaches the ledger', async () => {
    let opened = 0;
    const failingSink = {
      async open() {
        opened += 1;
        if (opened === 3) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
        return store.imageSink('b', 'row').open();
      },
    };
    const scanner = new AnswerScanner(failingSink);
    await scanner.push(Buffer.from(gemini3));
    const result = await readAnswer(scanner.end());
    expect((result.saveError as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(result.usage.value).toEqual(usage);
    expect(result.images).toEqual([]);
    expect(await partialFiles()).toEqual([]);
  });

  it('calls a body that is not JSON malformed', async () => {
    const scanner = new AnswerScanner(store.imageSink('b', 'row'));
    await scanner.push(Buffer.from('<html>bad gateway</html>'));
    expect(() => scanner.end()).toThrow(MalformedAnswerError);
  });
});

describe('answers re-serialized by a gateway', () => {
  const final = bytes(5, 20_000);
  const billed = { promptTokenCount: 12, candidatesTokenCount: 0, thoughtsTokenCount: 173, totalTokenCount: 185, promptTokensDetails: null, candidatesTokensDetails: null };

  it('reads `"parts": null` with usage as a billed answer with no image', async () => {
    const body = JSON.stringify({
      candidates: [{ content: { parts: null, role: 'model' }, finishReason: 'IMAGE_SAFETY', finishMessage: 'Unable to show the generated image.' }],
      usageMetadata: billed,
    });
    const result = await scan(body, [7, 100]);
    expect(result.images).toEqual([]);
    expect(result.finishReason).toBe('IMAGE_SAFETY');
    expect(result.finishMessage).toBe('Unable to show the generated image.');
    // IMAGE_SAFETY says why: the missing parts are no news.
    expect(result.problem).toBeUndefined();
    expect(result.usage).toEqual({ field: 'usageMetadata', value: billed });
    expect(result.billing.tokens).toMatchObject({ inputText: 12, outputImage: 0, outputText: 0, thinking: 173 });
  });

  it.each([
    ['null candidates', { candidates: null }, 'candidates is null'],
    ['no content', { candidates: [{ finishReason: 'STOP' }] }, 'no candidates[0].content'],
    ['null content', { candidates: [{ content: null, finishReason: 'OTHER_NEW_REASON' }] }, 'candidates[0].content is null'],
    ['parts not a list', { candidates: [{ content: { parts: { text: 'x' } } }] }, 'candidates[0].content.parts is not a list (object)'],
    ['candidates not a list', { candidates: 'none' }, 'candidates is not a list (string)'],
  ])('reads %s with usage as billed, never malformed', async (_name, shape, problem) => {
    const result = await scan(JSON.stringify({ ...shape, usageMetadata: billed }));
    expect(result.images).toEqual([]);
    expect(result.problem).toBe(problem);
    expect(result.usage.value).toEqual(billed);
  });

  it('still calls an unusable body without usage malformed (nothing says it was billed)', async () => {
    await expect(scan(JSON.stringify({ candidates: null }))).rejects.toThrow(MalformedAnswerError);
    await expect(scan('[1,2]')).rejects.toThrow(MalformedAnswerError);
  });

  it('tolerates missing index, null lists, unknown fields and megabyte signatures, which it never keeps', async () => {
    const signature = 'S'.repeat(3 * 1024 * 1024);
    const body = JSON.stringify({
      candidates: [
        {
          content: { role: 'model', parts: [{ text: 'Here it is.', thoughtSignature: signature }, { ...image(final), thoughtSignature: signature }, null] },
          finishReason: 'STOP',
          groundingMetadata: { webSearchQueries: null },
          safetyRatings: null,
        },
      ],
      serviceTier: 'standard',
      trafficType: 'ON_DEMAND',
      createTime: '2026-11-30T01:02:03Z',
      promptFeedback: null,
      usageMetadata: { ...usage, promptTokensDetails: null },
    });
    const scanner = new AnswerScanner(store.imageSink('b', 'row'));
    for (let offset = 0; offset < body.length; offset += 65536) await scanner.push(Buffer.from(body.slice(offset, offset + 65536)));
    const scanned = scanner.end();
    // The skeleton (all that is held of the body) has no trace of the signatures.
    expect(JSON.stringify(scanned.skeleton).length).toBeLessThan(2000);
    const result = await readAnswer(scanned);
    expect(result.problem).toBeUndefined();
    expect(result.texts).toEqual(['Here it is.']);
    expect(result.images).toHaveLength(1);
    expect(await readFile(result.images[0]!.tempPath)).toEqual(final);
    expect(JSON.stringify(result)).not.toContain('SSSS');
  });
});

describe('temporary files', () => {
  it('a row sweeping its leftovers never touches another row whose id starts the same', async () => {
    const mine = await store.imageSink('b', 'x').open();
    const theirs = await store.imageSink('b', 'x.y').open();
    const kept = await theirs.close();
    await mine.close();
    await store.sweepPartials('b', 'x');
    expect(await partialFiles()).toEqual([kept.tempPath.split('/').pop()]);
  });
});

describe('Base64StreamDecoder', () => {
  it('decodes any split of the text to the same bytes', () => {
    const data = bytes(5, 1000);
    const text = Buffer.from(data.toString('base64'));
    for (const step of [1, 2, 3, 5, 7, 64]) {
      const decoder = new Base64StreamDecoder();
      const out: Buffer[] = [];
      for (let i = 0; i < text.length; i += step) out.push(decoder.decode(text.subarray(i, i + step)));
      out.push(decoder.end());
      expect(Buffer.concat(out)).toEqual(data);
    }
  });
});
