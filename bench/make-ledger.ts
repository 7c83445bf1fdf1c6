/**
 * Writes a realistic ledger for the report benchmark: N lines (default 1,000,000) shaped like the
 * `LedgerEntry` lines `src/run/generate.ts` appends, spread over several files as several workers
 * on several machines would write them. About 70% are Gemini lines (half of them as earlier
 * versions wrote them, with no provider and no billing record, which the report reads through
 * the Gemini rule), 30% the images endpoint's: GPT Image billed by tokens, Seedream and DALL·E
 * by the image (so the report's per-unit image sums are exercised).
 *
 *   npx tsx bench/make-ledger.ts [lines] [out-dir]     # default 1000000 ./.bench/ledger-1m
 *
 * The ledger goes to `<out-dir>/ledger/`, so `tokenhot-batch report --out <out-dir>` reads it.
 * The figures are seeded: two runs write the same bytes, so timings compare.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LedgerEntry, UsageMetadata } from '../src/core/types.js';
import type { BillingRecord } from '../src/cost/billing.js';
import { geminiBilling } from '../src/providers/gemini/usage.js';

/** mulberry32: a small seeded generator, so the ledger is the same on every run. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Image tokens per size as in src/providers/models.ts (the figures the mock and the provider use).
const MODELS = [
  { id: 'gemini-3-pro-image-preview', weight: 0.45, thinks: true, imageTokens: [1120, 1120, 2000] },
  { id: 'gemini-3.1-flash-image-preview', weight: 0.35, thinks: true, imageTokens: [747, 1120, 1680, 2520] },
  { id: 'gemini-2.5-flash-image', weight: 0.2, thinks: false, imageTokens: [1290] },
] as const;
const BATCHES = ['spring', 'spring/shoes', 'spring/hats', 'catalog-daily', 'catalog-weekly', 'ads-q4', 'ads-q4/retarget', 'misc'];
const TAGS = ['hero', 'thumbnail', 'banner', 'social', 'print', 'a/b', 'shoes', 'hats', 'summer', 'winter'];
const WORKERS = [
  { host: 'worker-a', pid: 4101 },
  { host: 'worker-a', pid: 4102 },
  { host: 'worker-b', pid: 2207 },
  { host: 'worker-c', pid: 9931 },
];
const DAYS = 30;
const START = Date.UTC(2026, 10, 1);

function usage(next: () => number, model: (typeof MODELS)[number], kind: 'done' | 'noImage' | 'blocked'): UsageMetadata {
  const text = 5 + Math.floor(next() * 120);
  const references = next() < 0.2 ? 1 + Math.floor(next() * 3) : 0;
  const promptTokenCount = text + references * 560;
  const promptTokensDetails = [{ modality: 'TEXT', tokenCount: text }];
  if (references > 0) promptTokensDetails.push({ modality: 'IMAGE', tokenCount: references * 560 });
  if (kind === 'blocked') return { promptTokenCount, totalTokenCount: promptTokenCount, promptTokensDetails };
  const image = kind === 'done' ? model.imageTokens[Math.floor(next() * model.imageTokens.length)]! : 0;
  const textOut = next() < 0.6 || image === 0 ? 8 + Math.floor(next() * 33) : 0;
  const thoughts = model.thinks ? 100 + Math.floor(next() * 501) : 0;
  const candidates = image + textOut;
  const candidatesTokensDetails = image > 0 ? [{ modality: 'IMAGE', tokenCount: image }] : [{ modality: 'TEXT', tokenCount: textOut }];
  const result: UsageMetadata = {
    promptTokenCount,
    candidatesTokenCount: candidates,
    totalTokenCount: promptTokenCount + candidates + thoughts,
    promptTokensDetails,
    candidatesTokensDetails,
  };
  if (thoughts > 0) result.thoughtsTokenCount = thoughts;
  return result;
}

/** The images endpoint's models, with the units or tokens they are billed in. */
const SEEDREAM = ['doubao-seedream-4-0-250828', 'doubao-seedream-4-5-251128', 'doubao-seedream-5-0-260128'];
const DALL_E: [string, string[]][] = [
  ['dall-e-3', ['1024x1024/standard', '1792x1024/standard', '1024x1792/standard', '1024x1024/hd', '1792x1024/hd', '1024x1792/hd']],
  ['dall-e-2', ['256x256/standard', '512x512/standard', '1024x1024/standard']],
];
const GPT_IMAGE = ['gpt-image-1.5', 'gpt-image-2'];
const GPT_OUTPUT_TOKENS = [272, 1056, 4160, 408, 1584, 6240];

/** An images-endpoint answer: the model, what it is billed as, the usage as received, images saved. */
function imagesAnswer(next: () => number, kind: 'done' | 'noImage' | 'blocked'): { model: string; billing: BillingRecord; usage: Record<string, unknown>; images: number } {
  const pick = next();
  const count = kind === 'done' ? (next() < 0.1 ? 2 : 1) : 0;
  if (pick < 1 / 3) {
    // Seedream refuses with a 400 (not billed): a billed answer made its images.
    const model = SEEDREAM[Math.floor(next() * SEEDREAM.length)]!;
    const made = Math.max(1, count);
    return { model, billing: { images: { count: made, unit: 'image' } }, usage: { generated_images: made, output_tokens: 16_384 * made, total_tokens: 16_384 * made }, images: made };
  }
  if (pick < 2 / 3) {
    const [model, units] = DALL_E[Math.floor(next() * DALL_E.length)]!;
    const unit = units[Math.floor(next() * units.length)]!;
    // DALL·E answers carry no usage; a refusal is not billed, so every line made an image.
    return { model, billing: { images: { count: 1, unit } }, usage: {}, images: 1 };
  }
  const model = GPT_IMAGE[Math.floor(next() * GPT_IMAGE.length)]!;
  const inputText = 5 + Math.floor(next() * 120);
  const inputImage = next() < 0.2 ? (1 + Math.floor(next() * 3)) * 1290 : 0;
  const outputImage = kind === 'done' ? GPT_OUTPUT_TOKENS[Math.floor(next() * GPT_OUTPUT_TOKENS.length)]! : 0;
  const total = inputText + inputImage + outputImage;
  return {
    model,
    billing: { tokens: { inputText, inputImage, outputText: 0, outputImage, thinking: 0, total } },
    usage: { input_tokens: inputText + inputImage, output_tokens: outputImage, total_tokens: total, input_tokens_details: { text_tokens: inputText, image_tokens: inputImage } },
    images: count,
  };
}

function entry(next: () => number, index: number, ts: number, worker: (typeof WORKERS)[number]): LedgerEntry {
  const family = next();
  const roll = next();
  // About 2% blocked prompts and 3% answers without an image: both billed, both in the ledger.
  const kind = roll < 0.02 ? 'blocked' : roll < 0.05 ? 'noImage' : 'done';
  const tagCount = Math.floor(next() * 3);
  const tags = [...new Set(Array.from({ length: tagCount }, () => TAGS[Math.floor(next() * TAGS.length)]!))];
  const common = {
    ts: new Date(ts).toISOString(),
    batch: BATCHES[Math.floor(next() * BATCHES.length)]!,
    rowId: `row-${String(index).padStart(7, '0')}`,
    attempt: next() < 0.05 ? 2 : 1,
  };
  if (family < 0.3) {
    const answer = imagesAnswer(next, kind);
    return {
      ...common,
      model: answer.model,
      outcome: answer.images > 0 ? 'done' : 'failed',
      images: answer.images,
      tags,
      provider: 'openai-images',
      billing: answer.billing,
      usage: answer.usage,
      host: worker.host,
      pid: worker.pid,
    };
  }
  const pickModel = next();
  const model = pickModel < MODELS[0].weight ? MODELS[0] : pickModel < MODELS[0].weight + MODELS[1].weight ? MODELS[1] : MODELS[2];
  const images = kind === 'done' ? (next() < 0.03 ? 2 : 1) : 0;
  const usageMetadata = usage(next, model, kind);
  // Half as earlier versions wrote them: no provider, no billing record.
  const current = family < 0.65 ? { provider: 'gemini', billing: geminiBilling(usageMetadata) } : {};
  return {
    ...common,
    model: model.id,
    outcome: kind === 'done' ? 'done' : 'failed',
    ...(kind === 'noImage' ? { finishReason: next() < 0.5 ? 'IMAGE_SAFETY' : 'NO_IMAGE' } : kind === 'done' ? { finishReason: 'STOP' } : {}),
    ...(kind === 'blocked' ? { blockReason: 'PROHIBITED_CONTENT' } : {}),
    images,
    tags,
    ...current,
    usageMetadata,
    host: worker.host,
    pid: worker.pid,
  };
}

async function write(stream: WriteStream, text: string): Promise<void> {
  if (!stream.write(text)) await new Promise<void>((resolve) => stream.once('drain', () => resolve()));
}

export async function makeLedger(lines: number, outDir: string): Promise<string[]> {
  const dir = join(outDir, 'ledger');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const next = random(20261101);
  const files: string[] = [];
  // Each worker writes its share in time order, like a real process appending as it goes.
  for (const [w, worker] of WORKERS.entries()) {
    const share = Math.floor(lines / WORKERS.length) + (w < lines % WORKERS.length ? 1 : 0);
    const file = join(dir, `20261101T000000-${worker.host}-${worker.pid}.jsonl`);
    files.push(file);
    const stream = createWriteStream(file);
    const step = (DAYS * 86_400_000) / Math.max(1, share);
    let chunk = '';
    for (let i = 0; i < share; i += 1) {
      chunk += `${JSON.stringify(entry(next, i * WORKERS.length + w, START + Math.floor(i * step), worker))}\n`;
      // Written in ~1 MB pieces: one string per line would make the generator the slow part.
      if (chunk.length > 1 << 20) {
        await write(stream, chunk);
        chunk = '';
      }
    }
    await write(stream, chunk);
    await new Promise<void>((resolve, reject) => stream.end((error?: Error | null) => (error ? reject(error) : resolve())));
  }
  return files;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const lines = Number(process.argv[2] ?? 1_000_000);
  if (!Number.isInteger(lines) || lines < 1) throw new Error(`lines: "${process.argv[2]}" is not a positive whole number`);
  const outDir = resolve(process.argv[3] ?? '.bench/ledger-1m');
  const started = performance.now();
  const files = await makeLedger(lines, outDir);
  process.stdout.write(`${lines.toLocaleString('en-US')} ledger lines in ${files.length} files under ${join(outDir, 'ledger')} (${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
}
