/**
 * Cost reports over real ledger files in a temp folder: grouping, filters, price dates, the
 * NO PRICE warning, every format (with hostile ledger text), damaged and several ledger files,
 * every provider's lines (Gemini's old and new, the images endpoint's by tokens and by the image),
 * and costs checked against an independent computation.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderReport } from '../src/cli/commands/report.js';
import { ledgerDir, readLedger, scanLedger } from '../src/output/ledger.js';
import { geminiBilling } from '../src/providers/gemini/usage.js';
import { PriceTable, geminiRates, parseUsdPerMillion } from '../src/cost/pricing.js';
import type { BillingRecord } from '../src/cost/billing.js';
import { escapeHtml, renderHtml } from '../src/views/report-html.js';
import { buildReport, csvCell, renderCsv, renderJson, renderTable, ReportBuilder, type GroupKey, type Report, type ReportOptions } from '../src/cost/report.js';
import type { LedgerEntry, UsageMetadata } from '../src/core/types.js';
import { ROOT, startMockProcess } from './helpers/processes.js';
import { GEMINI_LIST_MICRO, geminiPico, mockBill, usd } from './helpers/mock-bill.js';
import { runInProcess } from './helpers/cli-in-process.js';

const PRO = 'gemini-3-pro-image-preview';
const FLASH = 'gemini-3.1-flash-image-preview';
const OLD = 'gemini-2.5-flash-image';

const folders: string[] = [];
afterAll(async () => {
  await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
});

async function outFolder(): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'tokenhot-report-'));
  folders.push(folder);
  await mkdir(ledgerDir(folder), { recursive: true });
  return folder;
}

function usage(prompt: number, image: number, text: number, thoughts = 0): UsageMetadata {
  const result: UsageMetadata = {
    promptTokenCount: prompt,
    candidatesTokenCount: image + text,
    totalTokenCount: prompt + image + text + thoughts,
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: prompt }],
    candidatesTokensDetails: image > 0 ? [{ modality: 'IMAGE', tokenCount: image }] : [{ modality: 'TEXT', tokenCount: text }],
  };
  if (thoughts > 0) result.thoughtsTokenCount = thoughts;
  return result;
}

let rowCounter = 0;
function entry(fields: Partial<LedgerEntry> = {}): LedgerEntry {
  rowCounter += 1;
  return {
    ts: '2026-11-10T12:00:00.000Z',
    batch: 'spring',
    rowId: `row-${rowCounter}`,
    model: PRO,
    attempt: 1,
    outcome: 'done',
    finishReason: 'STOP',
    images: 1,
    tags: [],
    usageMetadata: usage(10, 1120, 20, 200),
    host: 'test-host',
    pid: 1,
    ...fields,
  };
}

/** One ledger file, as a worker writes it: one JSON line per entry (raw strings as given). */
async function writeLedger(out: string, name: string, lines: (LedgerEntry | string)[]): Promise<string> {
  const file = join(ledgerDir(out), name);
  await writeFile(file, lines.map((line) => (typeof line === 'string' ? line : `${JSON.stringify(line)}\n`)).join(''));
  return file;
}

async function report(out: string, options: Partial<ReportOptions> = {}): Promise<Report & { readWarnings: string[] }> {
  const readWarnings: string[] = [];
  const builder = new ReportBuilder({ by: [], prices: new PriceTable(), ...options });
  await scanLedger(out, (e) => builder.add(e), { onWarning: (message) => readWarnings.push(message) });
  return { ...builder.finish(), readWarnings };
}

const group = (r: Report, key: Partial<Record<GroupKey, string>>) => r.groups.find((g) => JSON.stringify(g.key) === JSON.stringify(key));

// Independent of src/cost/pricing.ts: the list prices and the cost rule written out in
// test/helpers/mock-bill.ts, applied to the raw usageMetadata of each line.
const expectedPico = (e: LedgerEntry, price = GEMINI_LIST_MICRO[e.model]!): bigint => geminiPico(e.model, e.usageMetadata ?? {}, price);

describe('grouping', () => {
  const lines = [
    entry({ model: PRO, ts: '2026-11-01T08:00:00.000Z', batch: 'spring', tags: ['hero'] }),
    entry({ model: PRO, ts: '2026-11-01T09:00:00.000Z', batch: 'spring/shoes', tags: ['hero', 'banner'] }),
    entry({ model: FLASH, ts: '2026-11-02T10:00:00.000Z', batch: 'autumn', tags: [], usageMetadata: usage(5, 1680, 0, 300) }),
    entry({ model: OLD, ts: '2026-11-02T23:59:59.999Z', batch: 'spring', tags: ['banner'], outcome: 'failed', images: 0, finishReason: 'IMAGE_SAFETY', usageMetadata: usage(7, 0, 30) }),
  ];
  let out = '';
  const ready = (async () => {
    out = await outFolder();
    await writeLedger(out, 'a.jsonl', lines);
  })();

  it('totals without --by: every line once, blocked and no-image lines included', async () => {
    await ready;
    const r = await report(out);
    expect(r.groups).toEqual([]);
    expect(r.totals).toMatchObject({ requests: 4, images: 3, failedRows: 1, promptTokens: 32, imageOutputTokens: 1120 * 2 + 1680, textOutputTokens: 70, thoughtsTokens: 700 });
    expect(r.totals.totalTokens).toBe(lines.reduce((sum, e) => sum + (e.usageMetadata?.totalTokenCount ?? 0), 0));
  });

  it.each([
    // Code-unit order, the same on every machine: "gemini-3-pro" sorts before "gemini-3.1".
    ['model', [{ model: OLD }, { model: PRO }, { model: FLASH }], [1, 2, 1]],
    ['day', [{ day: '2026-11-01' }, { day: '2026-11-02' }], [2, 2]],
    ['batch', [{ batch: 'autumn' }, { batch: 'spring' }, { batch: 'spring/shoes' }], [1, 2, 1]],
    ['tag', [{ tag: '(none)' }, { tag: 'banner' }, { tag: 'hero' }], [1, 2, 2]],
  ] as const)('by %s', async (key, keys, requests) => {
    await ready;
    const r = await report(out, { by: [key] });
    expect(r.groups.map((g) => g.key)).toEqual(keys);
    expect(r.groups.map((g) => g.requests)).toEqual(requests);
  });

  it('by model,day and by day,batch,tag: one group per combination that occurs', async () => {
    await ready;
    const byModelDay = await report(out, { by: ['model', 'day'] });
    expect(byModelDay.groups.map((g) => [g.key.model, g.key.day, g.requests])).toEqual([
      [OLD, '2026-11-02', 1],
      [PRO, '2026-11-01', 2],
      [FLASH, '2026-11-02', 1],
    ]);
    const byAll = await report(out, { by: ['day', 'batch', 'tag'] });
    expect(byAll.groups.map((g) => g.key)).toEqual([
      { day: '2026-11-01', batch: 'spring', tag: 'hero' },
      { day: '2026-11-01', batch: 'spring/shoes', tag: 'banner' },
      { day: '2026-11-01', batch: 'spring/shoes', tag: 'hero' },
      { day: '2026-11-02', batch: 'autumn', tag: '(none)' },
      { day: '2026-11-02', batch: 'spring', tag: 'banner' },
    ]);
    // Group keys hold only the asked keys, in the order asked.
    expect(Object.keys(byAll.groups[0]!.key)).toEqual(['day', 'batch', 'tag']);
  });

  it('a line with several tags counts in each tag (said in a warning), a repeated tag once', async () => {
    const dir = await outFolder();
    await writeLedger(dir, 'a.jsonl', [entry({ tags: ['a', 'b', 'a'] }), entry({ tags: ['b'] })]);
    const r = await report(dir, { by: ['tag'] });
    expect(r.groups.map((g) => [g.key.tag, g.requests])).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
    expect(r.totals.requests).toBe(2);
    expect(r.warnings.some((w) => w.includes('several tags'))).toBe(true);
    expect(group(r, { tag: 'b' })!.costUsd).toBeCloseTo(2 * group(r, { tag: 'a' })!.costUsd, 9);
    // No warning when every line has one tag: the groups then add up to the totals.
    await writeLedger(dir, 'a.jsonl', [entry({ tags: ['a', 'a'] }), entry({ tags: ['b'] }), entry({ tags: [] })]);
    const single = await report(dir, { by: ['tag'] });
    expect(single.warnings.some((w) => w.includes('several tags'))).toBe(false);
  });

  it('the per-day totals are there whatever --by is, from the same pass', async () => {
    await ready;
    const r = await report(out, { by: ['model'] });
    expect(r.daily.map((d) => [d.key.day, d.requests])).toEqual([
      ['2026-11-01', 2],
      ['2026-11-02', 2],
    ]);
    expect(r.daily.reduce((sum, d) => sum + d.costUsd, 0)).toBeCloseTo(r.totals.costUsd, 9);
  });
});

describe('filters', () => {
  it('--batch takes the batch and its sub-batches, not a name that only starts the same', async () => {
    const out = await outFolder();
    await writeLedger(out, 'a.jsonl', ['spring', 'spring/shoes', 'spring/shoes/red', 'springtime', 'other/spring', 'spring-2'].map((batch) => entry({ batch })));
    const r = await report(out, { batch: 'spring', by: ['batch'] });
    expect(r.groups.map((g) => g.key.batch)).toEqual(['spring', 'spring/shoes', 'spring/shoes/red']);
    expect((await report(out, { batch: 'spring/shoes' })).totals.requests).toBe(2);
  });

  it('--since and --until are UTC days, both inclusive; ISO times work too', async () => {
    const out = await outFolder();
    const times = ['2026-10-31T23:59:59.999Z', '2026-11-01T00:00:00.000Z', '2026-11-15T12:00:00.000Z', '2026-11-30T23:59:59.999Z', '2026-12-01T00:00:00.000Z'];
    await writeLedger(out, 'a.jsonl', times.map((ts) => entry({ ts })));
    const r = await report(out, { since: '2026-11-01', until: '2026-11-30', by: ['day'] });
    expect(r.groups.map((g) => g.key.day)).toEqual(['2026-11-01', '2026-11-15', '2026-11-30']);
    expect((await report(out, { since: '2026-11-30' })).totals.requests).toBe(2);
    expect((await report(out, { until: '2026-10-31' })).totals.requests).toBe(1);
    expect((await report(out, { since: '2026-11-15T12:00:00Z', until: '2026-12-01T00:00:00Z' })).totals.requests).toBe(2);
  });

  it('a date that is not one is refused, not read as some other day', async () => {
    const out = await outFolder();
    await expect(report(out, { since: '2026-02-30' })).rejects.toThrow(/not a day/);
    await expect(report(out, { until: 'yesterday' })).rejects.toThrow(/not a date/);
  });
});

describe('prices', () => {
  it('history is priced at the price of its own day (a price file with `from`)', async () => {
    const out = await outFolder();
    const prices = new PriceTable().withOverrides([
      { model: PRO, from: '2026-12-01', ...geminiRates(parseUsdPerMillion('1.80', 't'), parseUsdPerMillion('10.80', 't'), parseUsdPerMillion('108', 't')) },
    ]);
    const before = entry({ ts: '2026-11-30T23:59:59.999Z' });
    const after = entry({ ts: '2026-12-01T00:00:00.000Z' });
    await writeLedger(out, 'a.jsonl', [before, after, entry({ ts: '2026-12-05T10:00:00.000Z' })]);
    const r = await report(out, { prices, by: ['day'] });
    const newMicro = { input: 1_800_000n, text: 10_800_000n, image: 108_000_000n };
    expect(group(r, { day: '2026-11-30' })!.costUsd).toBeCloseTo(usd(expectedPico(before)), 12);
    expect(group(r, { day: '2026-12-01' })!.costUsd).toBeCloseTo(usd(expectedPico(after, newMicro)), 12);
    expect(r.totals.costUsd).toBeCloseTo(usd(expectedPico(before) + 2n * expectedPico(after, newMicro)), 12);
    // Grouped by model only, one group holds lines of both prices: still each at its day's price.
    expect((await report(out, { prices, by: ['model'] })).groups[0]!.costUsd).toBeCloseTo(r.totals.costUsd, 12);
  });

  it('a model with no price: NO PRICE warning, its tokens shown, its cost not counted, unpricedRequests', async () => {
    const out = await outFolder();
    await writeLedger(out, 'a.jsonl', [entry({ model: 'mystery-model' }), entry({ model: 'mystery-model' }), entry({ model: PRO })]);
    const r = await report(out, { by: ['model'] });
    expect(r.unpricedModels).toEqual(['mystery-model']);
    expect(r.warnings[0]).toMatch(/^NO PRICE for model "mystery-model" \(2 requests\)/);
    expect(r.totals.unpricedRequests).toBe(2);
    expect(r.totals.promptTokens).toBe(30);
    const mystery = group(r, { model: 'mystery-model' })!;
    expect(mystery).toMatchObject({ requests: 2, unpricedRequests: 2, costUsd: 0, imageOutputTokens: 2240 });
    expect(r.totals.costUsd).toBeCloseTo(usd(expectedPico(entry())), 12);
    const table = renderTable(r, ['model']);
    expect(table.split('\n')[0]).toMatch(/^WARNING: NO PRICE/);
    expect(table).toMatch(/TOTAL.*\+ \?/);
    const json = JSON.parse(renderJson(r)) as { unpricedModels: string[]; totals: { unpricedRequests: number } };
    expect(json.unpricedModels).toEqual(['mystery-model']);
    expect(json.totals.unpricedRequests).toBe(2);
  });

  it('a price that starts later leaves the earlier days unpriced, said loudly', async () => {
    const out = await outFolder();
    const prices = new PriceTable().withOverrides([{ model: 'new-model', from: '2026-11-15', ...geminiRates(1_000_000n, 4_000_000n, 40_000_000n) }]);
    await writeLedger(out, 'a.jsonl', [entry({ model: 'new-model', ts: '2026-11-14T10:00:00.000Z' }), entry({ model: 'new-model', ts: '2026-11-15T10:00:00.000Z' })]);
    const r = await report(out, { prices });
    expect(r.totals.unpricedRequests).toBe(1);
    expect(r.warnings[0]).toMatch(/NO PRICE for model "new-model" \(1 requests\)/);
  });

  it('costs are exact: 3,000 varied lines against an independent computation, per group and in total', async () => {
    const out = await outFolder();
    let seed = 7;
    const next = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const models = [PRO, FLASH, OLD];
    const lines = Array.from({ length: 3000 }, (_, i) =>
      entry({
        model: models[next(3)]!,
        ts: `2026-11-${String(1 + next(28)).padStart(2, '0')}T${String(next(24)).padStart(2, '0')}:00:00.000Z`,
        batch: ['a', 'b', 'a/x'][next(3)]!,
        tags: [['t1'], ['t2'], ['t1', 't2'], []][next(4)]!,
        usageMetadata: next(20) === 0 ? { promptTokenCount: 1 + next(900), totalTokenCount: 1 } : usage(1 + next(2000), [0, 747, 1120, 1290, 2520][next(5)]!, next(60), next(600)),
        rowId: `r${i}`,
      }),
    );
    await writeLedger(out, 'w1.jsonl', lines.slice(0, 1700));
    await writeLedger(out, 'w2.jsonl', lines.slice(1700));
    const r = await report(out, { by: ['model', 'batch', 'tag'] });
    expect(Math.abs(r.totals.costUsd - usd(lines.reduce((sum, e) => sum + expectedPico(e), 0n)))).toBeLessThan(1e-9);
    for (const g of r.groups) {
      const members = lines.filter(
        (e) => e.model === g.key.model && e.batch === g.key.batch && (g.key.tag === '(none)' ? e.tags.length === 0 : e.tags.includes(g.key.tag!)),
      );
      expect(g.requests).toBe(members.length);
      expect(Math.abs(g.costUsd - usd(members.reduce((sum, e) => sum + expectedPico(e), 0n)))).toBeLessThan(1e-9);
    }
  });
});

// The images endpoint's list prices (design.md section 2), written out here apart from
// src/cost/pricing.ts: token rates in micro-USD per million tokens, image prices in micro-USD.
const TOKEN_MICRO: Record<string, { inputText: bigint; inputImage: bigint; outputText: bigint; outputImage: bigint }> = {
  'gpt-image-1.5': { inputText: 5_000_000n, inputImage: 8_000_000n, outputText: 10_000_000n, outputImage: 32_000_000n },
  'gpt-image-2': { inputText: 5_000_000n, inputImage: 8_000_000n, outputText: 10_000_000n, outputImage: 30_000_000n },
};
const IMAGE_MICRO: Record<string, Record<string, bigint>> = {
  'doubao-seedream-4-0-250828': { image: 30_000n },
  'doubao-seedream-4-5-251128': { image: 40_000n },
  'doubao-seedream-5-0-260128': { image: 35_000n },
  'dall-e-3': { '1024x1024/standard': 40_000n, '1792x1024/standard': 80_000n, '1024x1792/standard': 80_000n, '1024x1024/hd': 80_000n, '1792x1024/hd': 120_000n, '1024x1792/hd': 120_000n },
  'dall-e-2': { '256x256/standard': 16_000n, '512x512/standard': 18_000n, '1024x1024/standard': 20_000n },
};

/** A ledger line of the OpenAI-style family, as the design says the provider writes it. */
function imagesEntry(model: string, billing: BillingRecord, usageReceived: Record<string, unknown>, fields: Partial<LedgerEntry> = {}): LedgerEntry {
  const { usageMetadata: _none, ...rest } = entry({ model, provider: 'openai-images', billing, usage: usageReceived, finishReason: undefined, ...fields });
  return rest;
}
const gptImage = (model: string, inputText: number, inputImage: number, outputImage: number, fields: Partial<LedgerEntry> = {}): LedgerEntry =>
  imagesEntry(
    model,
    { tokens: { inputText, inputImage, outputText: 0, outputImage, thinking: 0, total: inputText + inputImage + outputImage } },
    { input_tokens: inputText + inputImage, output_tokens: outputImage, total_tokens: inputText + inputImage + outputImage, input_tokens_details: { text_tokens: inputText, image_tokens: inputImage } },
    fields,
  );
const perImage = (model: string, unit: string, count = 1, fields: Partial<LedgerEntry> = {}): LedgerEntry =>
  imagesEntry(model, { images: { count, unit } }, model.startsWith('doubao') ? { generated_images: count, output_tokens: 16_384 * count, total_tokens: 16_384 * count } : {}, { images: count, ...fields });

/** Any line's bill at list price, in picodollars, from its billing record (or, for old lines, its usageMetadata). */
function listPico(e: LedgerEntry): bigint {
  if (e.provider !== 'openai-images') return expectedPico(e);
  const { tokens, images } = e.billing!;
  let pico = 0n;
  if (tokens) {
    const rates = TOKEN_MICRO[e.model]!;
    pico += BigInt(tokens.inputText) * rates.inputText + BigInt(tokens.inputImage) * rates.inputImage + BigInt(tokens.outputText) * rates.outputText + BigInt(tokens.outputImage) * rates.outputImage;
  }
  if (images) pico += BigInt(images.count) * IMAGE_MICRO[e.model]![images.unit]! * 1_000_000n;
  return pico;
}

describe('providers: every model, billed by tokens or by the image', () => {
  const geminiNew = (fields: Partial<LedgerEntry> = {}): LedgerEntry => {
    const line = entry(fields);
    return { ...line, provider: 'gemini', billing: geminiBilling(line.usageMetadata!) };
  };
  const lines = [
    entry(), // a line of an earlier version: no provider, no billing
    geminiNew(),
    geminiNew({ model: FLASH, usageMetadata: usage(12, 1680, 0, 300) }),
    gptImage('gpt-image-1.5', 40, 0, 4160),
    gptImage('gpt-image-2', 35, 1290, 6240),
    gptImage('gpt-image-2', 20, 0, 272, { outcome: 'failed', images: 0 }),
    perImage('doubao-seedream-4-0-250828', 'image'),
    perImage('doubao-seedream-4-5-251128', 'image', 4),
    perImage('doubao-seedream-5-0-260128', 'image', 2),
    perImage('dall-e-3', '1024x1024/standard'),
    perImage('dall-e-3', '1792x1024/hd'),
    perImage('dall-e-3', '1024x1792/standard'),
    perImage('dall-e-2', '512x512/standard', 3),
  ];
  let out = '';
  const ready = (async () => {
    out = await outFolder();
    await writeLedger(out, 'a.jsonl', lines);
  })();

  it('--by provider,model: one group per model under its provider, each at its list price to 1e-9 USD', async () => {
    await ready;
    const r = await report(out, { by: ['provider', 'model'] });
    expect(r.warnings).toEqual([]);
    expect(r.groups.map((g) => [g.key.provider, g.key.model, g.requests])).toEqual([
      ['gemini', PRO, 2],
      ['gemini', FLASH, 1],
      ['openai-images', 'dall-e-2', 1],
      ['openai-images', 'dall-e-3', 3],
      ['openai-images', 'doubao-seedream-4-0-250828', 1],
      ['openai-images', 'doubao-seedream-4-5-251128', 1],
      ['openai-images', 'doubao-seedream-5-0-260128', 1],
      ['openai-images', 'gpt-image-1.5', 1],
      ['openai-images', 'gpt-image-2', 2],
    ]);
    for (const g of r.groups) {
      const members = lines.filter((e) => e.model === g.key.model);
      expect(Math.abs(g.costUsd - usd(members.reduce((sum, e) => sum + listPico(e), 0n))), g.key.model).toBeLessThan(1e-9);
    }
    expect(Math.abs(r.totals.costUsd - usd(lines.reduce((sum, e) => sum + listPico(e), 0n)))).toBeLessThan(1e-9);
    // Spot checks by hand: 4 Seedream 4.5 images at $0.04; DALL·E 3 $0.04 + $0.12 + $0.08.
    expect(group(r, { provider: 'openai-images', model: 'doubao-seedream-4-5-251128' })!.costUsd).toBeCloseTo(0.16, 12);
    expect(group(r, { provider: 'openai-images', model: 'dall-e-3' })!.costUsd).toBeCloseTo(0.24, 12);
    const byProvider = await report(out, { by: ['provider'] });
    expect(byProvider.groups.map((g) => [g.key.provider, g.requests])).toEqual([
      ['gemini', 3],
      ['openai-images', 10],
    ]);
  });

  it('cost per image: the cost over the images made (failed answers cost included); null without images', async () => {
    await ready;
    const r = await report(out, { by: ['model'] });
    const dalle3 = group(r, { model: 'dall-e-3' })!;
    expect(dalle3.costPerImageUsd).toBeCloseTo(0.08, 12);
    expect(group(r, { model: 'dall-e-2' })!.costPerImageUsd).toBeCloseTo(0.018, 12);
    // gpt-image-2: two answers, one without an image; both bills over the one image.
    const gpt2 = group(r, { model: 'gpt-image-2' })!;
    expect(gpt2.images).toBe(1);
    expect(gpt2.costPerImageUsd).toBeCloseTo(gpt2.costUsd, 12);
    expect(r.totals.costPerImageUsd).toBeCloseTo(r.totals.costUsd / r.totals.images, 12);
    const failedOnly = await outFolder();
    await writeLedger(failedOnly, 'a.jsonl', [entry({ outcome: 'failed', images: 0 })]);
    expect((await report(failedOnly)).totals.costPerImageUsd).toBeNull();
    expect(renderTable(await report(failedOnly), [])).toMatch(/^TOTAL\s+\$[\d.]+\s+-\s+1\s+0\s+1\s/m);
  });

  it('token fields: GPT Image as billed (prompt = text + image input); a model billed by the image adds 0', async () => {
    await ready;
    const r = await report(out, { by: ['model'] });
    expect(group(r, { model: 'gpt-image-2' })).toMatchObject({ promptTokens: 35 + 1290 + 20, imageOutputTokens: 6240 + 272, textOutputTokens: 0, thoughtsTokens: 0, totalTokens: 35 + 1290 + 6240 + 20 + 272 });
    for (const model of ['dall-e-3', 'dall-e-2', 'doubao-seedream-4-5-251128']) {
      expect(group(r, { model }), model).toMatchObject({ promptTokens: 0, imageOutputTokens: 0, textOutputTokens: 0, thoughtsTokens: 0, totalTokens: 0 });
    }
  });

  it('lines of earlier versions (no provider, no billing) read as Gemini, billed by their usageMetadata', async () => {
    const dir = await outFolder();
    const old = entry();
    await writeLedger(dir, 'a.jsonl', [old, { ...old, provider: 'gemini', billing: geminiBilling(old.usageMetadata!) }]);
    const r = await report(dir, { by: ['provider'] });
    expect(r.groups).toHaveLength(1);
    expect(r.groups[0]).toMatchObject({ key: { provider: 'gemini' }, requests: 2, imageOutputTokens: 2240, thoughtsTokens: 400 });
    expect(Math.abs(r.groups[0]!.costUsd - usd(2n * expectedPico(old)))).toBeLessThan(1e-12);
  });

  it('a unit with no price: NO PRICE naming model and unit, its lines not counted, cost per image over the priced ones', async () => {
    const dir = await outFolder();
    await writeLedger(dir, 'a.jsonl', [perImage('dall-e-3', '1024x1024/hd'), perImage('dall-e-3', '2048x2048/hd'), perImage('dall-e-3', '2048x2048/hd')]);
    const r = await report(dir, { by: ['model'] });
    expect(r.warnings).toEqual(['NO PRICE for model "dall-e-3": images of unit "2048x2048/hd" (2 requests): their cost is NOT counted; add it to a price file (--prices)']);
    expect(r.unpricedModels).toEqual(['dall-e-3']);
    expect(r.totals).toMatchObject({ requests: 3, images: 3, unpricedRequests: 2 });
    expect(r.totals.costUsd).toBeCloseTo(0.08, 12);
    expect(r.totals.costPerImageUsd).toBeCloseTo(0.08, 12);
    expect(renderTable(r, ['model'])).toMatch(/^dall-e-3\s+\$0\.0800 \+ \?\s+\$0\.0800\s+3\s+3/m);
    // A price file that adds the unit prices them.
    const priced = await report(dir, { by: ['model'], prices: new PriceTable().withOverrides([{ model: 'dall-e-3', perImage: { '1024x1024/hd': 80_000_000_000n, '2048x2048/hd': 160_000_000_000n } }]) });
    expect(priced.warnings).toEqual([]);
    expect(priced.totals.costUsd).toBeCloseTo(0.4, 12);
  });

  it('a billing record that is not one (a hand-edited ledger) is unpriced and said, never a crash or $0 in silence', async () => {
    const dir = await outFolder();
    const odd = [
      imagesEntry('dall-e-3', { images: { count: 'two' as unknown as number, unit: '1024x1024/hd' } }, {}),
      imagesEntry('gpt-image-2', { tokens: null as unknown as undefined }, {}),
      imagesEntry('gpt-image-2', { tokens: { inputText: 1.5, inputImage: 0, outputText: 0, outputImage: 10, thinking: 0 } }, {}),
    ];
    await writeLedger(dir, 'a.jsonl', odd);
    const r = await report(dir, { by: ['model'] });
    expect(r.totals.requests).toBe(3);
    expect(r.totals.unpricedRequests).toBe(2);
    expect(r.warnings.join('\n')).toMatch(/NO PRICE for model "dall-e-3": an image count of "two", not a whole number/);
    expect(r.warnings.join('\n')).toMatch(/NO PRICE for model "gpt-image-2": inputText tokens of 1\.5, not a whole number/);
  });

  it('per-image counts are bucketed by unit and price: 3,000 varied lines of all ten models, exact per group and in total', async () => {
    const dir = await outFolder();
    let seed = 11;
    const next = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const units = Object.entries(IMAGE_MICRO).flatMap(([model, prices]) => Object.keys(prices).map((unit) => [model, unit] as const));
    const made = Array.from({ length: 3000 }, (_, i) => {
      const fields: Partial<LedgerEntry> = { tags: [['t1'], ['t2'], []][next(3)]!, ts: `2026-11-${String(1 + next(28)).padStart(2, '0')}T10:00:00.000Z`, rowId: `r${i}` };
      switch (next(3)) {
        case 0: {
          const [model, unit] = units[next(units.length)]!;
          return perImage(model, unit, 1 + next(4), fields);
        }
        case 1:
          return gptImage(['gpt-image-1.5', 'gpt-image-2'][next(2)]!, 1 + next(300), next(3) * 560, [272, 1056, 4160, 408, 1584, 6240][next(6)]!, fields);
        default:
          return next(2) === 0 ? entry({ model: [PRO, FLASH, OLD][next(3)]!, ...fields }) : geminiNew({ model: [PRO, FLASH, OLD][next(3)]!, usageMetadata: usage(1 + next(900), 1120, next(40), next(500)), ...fields });
      }
    });
    await writeLedger(dir, 'w1.jsonl', made.slice(0, 1300));
    await writeLedger(dir, 'w2.jsonl', made.slice(1300));
    const r = await report(dir, { by: ['provider', 'model', 'tag'] });
    expect(r.warnings).toEqual([]);
    expect(Math.abs(r.totals.costUsd - usd(made.reduce((sum, e) => sum + listPico(e), 0n)))).toBeLessThan(1e-9);
    expect(r.groups.length).toBeGreaterThan(25);
    for (const g of r.groups) {
      const members = made.filter((e) => e.model === g.key.model && (g.key.tag === '(none)' ? e.tags.length === 0 : e.tags.includes(g.key.tag!)));
      expect(g.requests).toBe(members.length);
      expect(Math.abs(g.costUsd - usd(members.reduce((sum, e) => sum + listPico(e), 0n)))).toBeLessThan(1e-9);
    }
  });

  it('the CLI: --by provider,model, money first in the table; a bad key names provider among the keys', async () => {
    await ready;
    const table = await runInProcess(['report', '--out', out, '--by', 'provider,model']);
    expect(table.code, table.stderr).toBe(0);
    const rows = table.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^provider\s+model\s+cost\s+per image\s+requests\s+images\s+failed\s+prompt tok\s+image tok/);
    expect(rows.find((row) => row.includes('dall-e-3'))).toMatch(/^openai-images\s+dall-e-3\s+\$0\.2400\s+\$0\.0800\s+3\s+3\s+0\s+0\s+0\s+0\s+0$/);
    const json = JSON.parse((await runInProcess(['report', '--out', out, '--by', 'provider', '--format', 'json'])).stdout) as { groups: { key: { provider: string }; costPerImageUsd: number }[] };
    expect(json.groups.map((g) => g.key.provider)).toEqual(['gemini', 'openai-images']);
    const bad = await runInProcess(['report', '--out', out, '--by', 'vendor']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--by: "vendor" is not one of provider, model, day, batch, tag');
  });
});

describe('reading the ledger', () => {
  it('a last line cut by a crash is skipped with a warning naming file and line; the rest counts', async () => {
    const out = await outFolder();
    const whole = JSON.stringify(entry());
    const file = await writeLedger(out, 'w.jsonl', [entry(), entry(), whole.slice(0, 57)]);
    const r = await report(out);
    expect(r.totals.requests).toBe(2);
    expect(r.readWarnings).toEqual([`${file}:3: unreadable ledger line skipped (cut short by a crash?)`]);
  });

  it('readLedger names each bad line (cut, not an object, not an entry) and passes over blank ones', async () => {
    const out = await outFolder();
    await writeLedger(out, 'w.jsonl', [entry(), '{"ts":"2026-11-10T1', '\n', entry(), '[1,2]\n', '{"no":"fields"}\n', '\r\n', entry(), '{"ts":"2026-11-10T12:00']);
    const warnings: string[] = [];
    const entries: LedgerEntry[] = [];
    for await (const e of readLedger(out, { onWarning: (m) => warnings.push(m) })) entries.push(e);
    expect(entries).toHaveLength(3);
    // Lines 1, 3 and 7 are entries; 6 is a blank CRLF line; 8 is a last line cut before its newline.
    expect(warnings.map((w) => w.replace(/^.*:(\d+): /, '$1: '))).toEqual([
      '2: unreadable ledger line skipped (cut short by a crash?)',
      '4: ledger line skipped: not a JSON object',
      '5: ledger line skipped: it lacks a time (ts), model or batch',
      '8: unreadable ledger line skipped (cut short by a crash?)',
    ]);
  });

  it('every file under ledger/ is read and summed (several workers, several machines); other files are not', async () => {
    const out = await outFolder();
    await writeLedger(out, '20261101T000000-host-a-1.jsonl', [entry(), entry()]);
    await writeLedger(out, '20261101T000000-host-b-2.jsonl', [entry({ model: FLASH })]);
    await writeLedger(out, '20261102T000000-host-a-3.jsonl', [entry({ model: OLD })]);
    await writeFile(join(ledgerDir(out), 'notes.txt'), 'not a ledger\n');
    const r = await report(out, { by: ['model'] });
    expect(r.totals.requests).toBe(4);
    expect(r.groups.map((g) => [g.key.model, g.requests])).toEqual([
      [OLD, 1],
      [PRO, 2],
      [FLASH, 1],
    ]);
    expect(r.readWarnings).toEqual([]);
  });

  it('no ledger folder at all is an empty report, not an error', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'tokenhot-report-'));
    folders.push(folder);
    expect((await report(folder)).totals.requests).toBe(0);
  });

  it('long lines, multi-byte text across read boundaries, CRLF and a byte order mark', async () => {
    const out = await outFolder();
    const lines: LedgerEntry[] = [];
    // Enough lines of odd lengths that many 64 KiB reads end inside a multi-byte character.
    for (let i = 0; i < 3000; i += 1) lines.push(entry({ batch: `春-${'é'.repeat(i % 7)}-🎨`, tags: [`标签${i % 3}`] }));
    lines.push(entry({ batch: 'huge', tags: ['x'.repeat(200_000)] }));
    const text = lines.map((e) => JSON.stringify(e)).join('\r\n');
    await writeFile(join(ledgerDir(out), 'w.jsonl'), `\ufeff${text}\r\n`);
    const r = await report(out, { by: ['tag'] });
    expect(r.readWarnings).toEqual([]);
    expect(r.totals.requests).toBe(3001);
    expect(group(r, { tag: '标签1' })!.requests).toBe(1000);
    expect(group(r, { tag: 'x'.repeat(200_000) })!.requests).toBe(1);
    const batches = await report(out, { by: ['batch'] });
    expect(batches.groups.map((g) => g.key.batch)).toContain('春-éééééé-🎨');
  });

  it('readLedger + buildReport (the per-entry API others use) gives the same report as scanLedger', async () => {
    const out = await outFolder();
    await writeLedger(out, 'a.jsonl', [entry({ tags: ['a'] }), entry({ model: FLASH, tags: ['a', 'b'] })]);
    await writeLedger(out, 'b.jsonl', [entry({ model: OLD, ts: '2026-11-11T00:00:00.000Z' })]);
    const options: ReportOptions = { by: ['model', 'tag'], prices: new PriceTable() };
    const viaGenerator = await buildReport(readLedger(out), options);
    const { readWarnings, ...viaScan } = await report(out, options);
    expect(readWarnings).toEqual([]);
    expect(viaGenerator).toEqual(viaScan);
  });
});

describe('formats', () => {
  const hostile = {
    batch: '<script>alert(1)</script>',
    tag: '"><img src=x onerror=alert(2)>',
    model: "<b onclick='x'>m&m</b>",
  };
  let r: Report;
  const by: GroupKey[] = ['model', 'batch', 'tag'];
  const ready = (async () => {
    const out = await outFolder();
    await writeLedger(out, 'a.jsonl', [
      entry({ batch: hostile.batch, tags: [hostile.tag], ts: '2026-11-01T10:00:00.000Z' }),
      entry({ model: hostile.model, ts: '2026-11-03T10:00:00.000Z' }),
      entry({ batch: '=HYPERLINK("http://evil","x")', tags: ['+1', '-2', '@SUM(A1)', '\tTAB', '\rCR', 'a,b', 'say "hi"', 'two\nlines'], ts: '2026-11-03T11:00:00.000Z' }),
    ]);
    r = await report(out, { by });
  })();

  it('json: the contract shape, {totals: T, groups: [{key, ...T}], warnings}', async () => {
    await ready;
    const json = JSON.parse(renderReport(r, 'json', by)) as Record<string, unknown>;
    // Money first, then the contract's counts.
    const fields = ['costUsd', 'costPerImageUsd', 'requests', 'images', 'failedRows', 'promptTokens', 'imageOutputTokens', 'textOutputTokens', 'thoughtsTokens', 'totalTokens', 'unpricedRequests'];
    expect(Object.keys(json)).toEqual(['totals', 'groups', 'unpricedModels', 'warnings']);
    expect(Object.keys(json.totals as object)).toEqual(fields);
    const groups = json.groups as Record<string, unknown>[];
    expect(groups.length).toBe(r.groups.length);
    for (const g of groups) expect(Object.keys(g)).toEqual(['key', ...fields]);
    expect(groups[0]!.key).toEqual(r.groups[0]!.key);
    expect(json).not.toHaveProperty('daily');
  });

  it('table: aligned columns, a TOTAL row, ledger control characters shown, not obeyed', async () => {
    const out = await outFolder();
    await writeLedger(out, 'a.jsonl', [entry({ batch: 'a' }), entry({ batch: 'long-batch-name\u001b[2J' }), entry({ batch: 'a', model: FLASH })]);
    const t = renderTable(await report(out, { by: ['batch'] }), ['batch']);
    const rows = t.trimEnd().split('\n');
    // Money first: cost and cost per image right after the key.
    expect(rows[0]).toMatch(/^batch\s+cost\s+per image\s+requests\s+images\s+failed\s+prompt tok/);
    expect(rows.at(-1)).toMatch(/^TOTAL\s+\$[\d.]+\s+\$[\d.]+\s+3\s+3\s/);
    expect(t).not.toContain('\u001b');
    expect(t).toContain('long-batch-name\\x1b[2J');
    // Right-aligned figures: every row (header, groups, total) ends at the same column.
    const widths = new Set(rows.filter((row) => !/^-/.test(row)).map((row) => row.length));
    expect(widths.size).toBe(1);
  });

  it('csv: formula-looking cells made text, commas, quotes and newlines quoted, a TOTAL row', async () => {
    await ready;
    const csv = renderCsv(r, by);
    expect(csvCell('=1+1')).toBe("'=1+1");
    expect(csvCell('+1')).toBe("'+1");
    expect(csvCell('-2')).toBe("'-2");
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell('\tTAB')).toBe("'\tTAB");
    expect(csvCell('\rCR')).toBe(`"'\rCR"`);
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('plain')).toBe('plain');
    expect(csv).toContain(`"'=HYPERLINK(""http://evil"",""x"")"`);
    // No cell of the file starts with a formula character (quoted or not).
    const cells = csv.match(/(?:^|,)("(?:[^"]|"")*"|[^,\n]*)/g)!.map((cell) => cell.replace(/^,/, '').replace(/^"/, ''));
    expect(cells.filter((cell) => /^[=+\-@\t\r]/.test(cell))).toEqual([]);
    const lines = csv.trimEnd().split('\n');
    expect(lines[0]).toBe('model,batch,tag,costUsd,costPerImageUsd,requests,images,failedRows,promptTokens,imageOutputTokens,textOutputTokens,thoughtsTokens,totalTokens,unpricedRequests');
    expect(lines.at(-1)).toMatch(/^TOTAL,,,[\d.]+,[\d.]+,3,3,/);
  });

  it('html: one self-contained page, ledger text escaped, NO PRICE on top, a chart of spend per day', async () => {
    await ready;
    const html = renderHtml(r, { by, generatedAt: new Date('2026-11-24T00:00:00Z') });
    // Escaped: the hostile names appear only in their escaped form.
    for (const text of Object.values(hostile)) {
      expect(html).not.toContain(text);
      expect(html).toContain(escapeHtml(text));
    }
    // No tag of theirs survives: their `<` is always `&lt;`.
    expect(html).not.toMatch(/<script|<img|<b[ >]/i);
    // Self-contained: no script, no external URL of any kind (links, images, fonts, imports).
    // Attribute values are blanked first: a cut key's tooltip holds the (escaped) text itself.
    expect(html.replace(/"[^"]*"/g, '""')).not.toMatch(/<[^>]*\b(?:src|href)=/i);
    expect(html).not.toMatch(/url\(|@import|https?:\/\/(?!evil)/i);
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<style>');
    // NO PRICE (the hostile model has none) comes before the figures, in the alert box.
    const alert = html.indexOf('class="alert"');
    expect(alert).toBeGreaterThan(0);
    expect(html.slice(alert, alert + 300)).toContain('NO PRICE for model &quot;&lt;b onclick=&#39;x&#39;&gt;m&amp;m&lt;/b&gt;&quot;');
    expect(alert).toBeLessThan(html.indexOf('class="cards"'));
    // The chart: inline SVG, axis titles, one bar per day from first to last (the empty day too),
    // each with its figures as a tooltip.
    const svg = html.match(/<svg[\s\S]*?<\/svg>/)![0];
    expect(svg).toContain('USD per day');
    expect(svg).toContain('day (UTC)');
    const tips = [...svg.matchAll(/<g class="bar[^"]*"><title>([^<]*)<\/title>/g)].map((m) => m[1]);
    expect(tips).toHaveLength(3);
    expect(tips[0]).toMatch(/^2026-11-01: \$[\d.,]+, 1 requests/);
    expect(tips[1]).toBe('2026-11-02: $0, no requests');
    expect(tips[2]).toMatch(/^2026-11-03: \$[\d.,]+ \+ \?, 2 requests, 2 images \(1 requests with NO PRICE not counted\)/);
    // The breakdown table with its totals row.
    expect(html).toContain('<h2>By model, batch, tag</h2>');
    // Money first: after the keys come cost and cost per image, then the counts.
    expect(html).toMatch(/<thead><tr>(<th class="key" scope="col">[a-z]+<\/th>){3}<th scope="col" class="money">cost<\/th><th scope="col" class="money">cost per image<\/th><th scope="col">requests<\/th>/);
    expect(html).toMatch(/<tfoot><tr><td class="key" colspan="3">TOTAL<\/td><td class="money">\$[\d.]+ \+ \?<\/td><td class="money">\$[\d.]+<\/td><td>3<\/td>/);
  });

  it('html with an empty ledger says so instead of drawing an empty chart', async () => {
    const html = renderHtml(await report(await outFolder()), { by: [] });
    expect(html).toContain('No ledger lines');
    expect(html).not.toContain('<svg');
  });
});

describe('tokenhot-batch report (the CLI)', () => {
  it('reads the ledger folder, filters, groups and writes json to stdout and html to --output', async () => {
    const out = await outFolder();
    await writeLedger(out, 'w1.jsonl', [entry({ batch: 'spring', tags: ['hero'] }), entry({ batch: 'spring/shoes', model: FLASH })]);
    await writeLedger(out, 'w2.jsonl', [entry({ batch: 'autumn' }), `${JSON.stringify(entry()).slice(0, 40)}`]);
    const json = await runInProcess(['report', '--out', out, '--batch', 'spring', '--by', 'model', '--format', 'json']);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { totals: { requests: number }; groups: { key: { model: string }; requests: number }[] };
    expect(parsed.totals.requests).toBe(2);
    expect(parsed.groups.map((g) => g.key.model)).toEqual([PRO, FLASH]);
    expect(json.stderr).toMatch(/warning: .*w2\.jsonl:2: unreadable ledger line skipped/);

    const file = join(out, 'report.html');
    const html = await runInProcess(['report', '--out', out, '--by', 'tag', '--format', 'html', '--output', file, '--since', '2026-11-01', '--until', '2026-11-30']);
    expect(html.code).toBe(0);
    expect(html.stdout).toBe('');
    const page = await readFile(file, 'utf8');
    expect(page).toContain('<svg');
    expect(page).toContain('since 2026-11-01');

    const bad = await runInProcess(['report', '--out', out, '--since', '2026-02-30']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--since: "2026-02-30" is not a day/);
    const backwards = await runInProcess(['report', '--out', out, '--since', '2026-12-01', '--until', '2026-11-01']);
    expect(backwards.code).toBe(2);
    expect(backwards.stderr).toContain('--since 2026-12-01 is after --until 2026-11-01');

    // Typos must not look like batches that cost nothing.
    const typo = await runInProcess(['report', '--out', out, '--batch', 'sprnig']);
    expect(typo.stdout).toMatch(/no ledger line of batch sprnig; batches in the ledger: autumn, spring, spring\/shoes/);
    const nowhere = await runInProcess(['report', '--out', join(out, 'not-here'), '--format', 'json']);
    expect(nowhere.code).toBe(0);
    expect(nowhere.stderr).toMatch(/warning: no ledger under .*not-here\/ledger: nothing billed was recorded/);
  });
});

describe('the bill: report --by provider,model against the mock', () => {
  it("equals the mock's bill at the list prices to 1e-9 USD, every model of both providers, from a real run", async () => {
    const mock = await startMockProcess(['--api-key', 'k']);
    const dir = await mkdtemp(join(tmpdir(), 'tokenhot-bill-'));
    folders.push(dir);
    try {
      const env = { TOKENHOT_API_KEY: 'k', TOKENHOT_BASE_URL: mock.url, TOKENHOT_DURABLE: '0' };
      // The example catalog of all ten models (reference images, sizes and qualities), plus a
      // blocked prompt and a Seedream group with a failed image: billed too.
      const csv = join(dir, 'all.csv');
      const catalog = await readFile(join(ROOT, 'jobs/examples/catalog-all-models.csv'), 'utf8');
      await writeFile(
        csv,
        `${catalog.replaceAll('refs/', join(ROOT, 'jobs/examples/refs/'))}` +
          `blocked,refused [mock:blocked],${PRO},1:1,1K,,,,,\n` +
          'group,a set [mock:group-partial],doubao-seedream-4-5-251128,,,2048x2048,,,,\n',
      );
      const run = await runInProcess(['run', csv, '--out', dir, '--plain'], env);
      expect(run.code, run.stdout + run.stderr).toBe(1);
      expect(run.stdout).toMatch(/blocked \(line \d+\): prompt blocked/);

      const report = await runInProcess(['report', '--out', dir, '--by', 'provider,model', '--format', 'json']);
      expect(report.code, report.stderr).toBe(0);
      const groups = (JSON.parse(report.stdout) as { groups: { key: { provider: string; model: string }; costUsd: number; unpricedRequests: number }[] }).groups;

      // The mock's own bill at the list prices (test/helpers/mock-bill.ts).
      const bill = mockBill(await mock.requests());
      expect(bill.size).toBe(10);
      expect(groups.map((g) => `${g.key.provider}/${g.key.model}`).sort()).toEqual([...bill.keys()].sort());
      let total = 0n;
      for (const g of groups) {
        const billed = bill.get(`${g.key.provider}/${g.key.model}`)!;
        total += billed;
        expect(g.unpricedRequests, g.key.model).toBe(0);
        expect(Math.abs(g.costUsd - usd(billed)), g.key.model).toBeLessThan(1e-9);
      }

      // The estimate of the same file (sent nothing) is near the bill.
      const estimate = await runInProcess(['estimate', csv, '--format', 'json'], env);
      const estimated = (JSON.parse(estimate.stdout) as { costUsd: number }).costUsd;
      expect(estimated / usd(total)).toBeGreaterThan(0.8);
      expect(estimated / usd(total)).toBeLessThan(1.25);
    } finally {
      await mock.stop();
    }
  });
});
