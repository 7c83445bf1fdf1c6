/**
 * The gallery builder on sidecars and ledgers made by hand: what goes into the page, what stays
 * out, and that its totals are the ledger's for exactly the batch. (The page in a browser, made
 * from a real run, is test/browser/gallery.test.ts.)
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../src/core/errors.js';
import { buildGallery, galleryPath } from '../src/views/gallery.js';
import { escapeHtml, exactUsd } from '../src/views/gallery-html.js';
import { galleryCommand } from '../src/cli/commands/gallery.js';
import type { Sidecar } from '../src/run/generate.js';
import { billedCostPico, PriceTable, picoToUsd } from '../src/cost/pricing.js';
import { geminiBilling } from '../src/providers/gemini/usage.js';
import type { LedgerEntry, UsageMetadata } from '../src/core/types.js';
import { runInProcess } from './helpers/cli-in-process.js';


const prices = new PriceTable();
const PRO = 'gemini-3-pro-image-preview';
const TS = '2026-11-20T10:00:00.000Z';

let dir: string;
let png: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'thb-gallery-'));
  png = await sharp({ create: { width: 1024, height: 768, channels: 3, background: { r: 200, g: 60, b: 40 } } })
    .png()
    .toBuffer();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function usage(imageTokens: number, prompt = 10): UsageMetadata {
  return {
    promptTokenCount: prompt,
    candidatesTokenCount: imageTokens + 12,
    thoughtsTokenCount: 100,
    totalTokenCount: prompt + imageTokens + 112,
    candidatesTokensDetails: imageTokens > 0 ? [{ modality: 'IMAGE', tokenCount: imageTokens }] : [],
  };
}

function priceOf(model: string, metadata: UsageMetadata): bigint {
  return billedCostPico(geminiBilling(metadata), prices.priceOf(model, TS)!)!;
}

interface Made {
  batch: string;
  id: string;
  status: 'done' | 'failed';
  reason?: string;
  prompt?: string;
  tags?: string[];
  model?: string;
  images?: number;
  /** Write the image files (false: the sidecar names a missing file). */
  files?: boolean;
  usage?: UsageMetadata;
}

async function makeRow(out: string, row: Made): Promise<LedgerEntry | undefined> {
  const folder = join(out, row.batch);
  await mkdir(folder, { recursive: true });
  const model = row.model ?? PRO;
  const images = Array.from({ length: row.images ?? (row.status === 'done' ? 1 : 0) }, (_, index) => ({
    file: `${index === 0 ? row.id : `${row.id}-${index + 1}`}.png`,
    mimeType: 'image/png',
    bytes: png.length,
  }));
  if (row.files !== false) for (const image of images) await writeFile(join(folder, image.file), png);
  const price = prices.priceOf(model, TS);
  const sidecar: Sidecar = {
    batch: row.batch,
    id: row.id,
    status: row.status,
    ...(row.reason ? { reason: row.reason } : {}),
    prompt: row.prompt ?? `prompt of ${row.id}`,
    parameters: { model, aspectRatio: '1:1', imageSize: '1K', referenceImages: [] },
    tags: row.tags ?? [],
    metadata: {},
    images,
    texts: [],
    ...(row.usage ? { usageMetadata: row.usage } : {}),
    costUsd: row.usage && price ? picoToUsd(billedCostPico(geminiBilling(row.usage), price)!) : null,
    attempt: 1,
    timings: { startedAt: TS, finishedAt: TS, durationMs: 1000 },
  };
  await writeFile(join(folder, `${row.id}.json`), JSON.stringify(sidecar));
  if (!row.usage) return undefined;
  return { ts: TS, batch: row.batch, rowId: row.id, model, attempt: 1, outcome: images.length > 0 ? 'done' : 'failed', images: images.length, tags: row.tags ?? [], usageMetadata: row.usage, host: 'h', pid: 1 };
}

async function writeLedger(out: string, entries: (LedgerEntry | undefined)[], extra = ''): Promise<void> {
  await mkdir(join(out, 'ledger'), { recursive: true });
  await writeFile(join(out, 'ledger', '20261120T100000-h-1.jsonl'), `${entries.filter((entry) => entry !== undefined).map((entry) => JSON.stringify(entry)).join('\n')}\n${extra}`);
}

describe('gallery', () => {
  it('writes <out>/<batch>.gallery.html, beside the batch folder, with totals of exactly this batch from the ledger', async () => {
    const out = join(dir, 'basic');
    const hostile = '<script>alert("x")</script> & \'quotes\'';
    const entries = [
      await makeRow(out, { batch: 'spring', id: 'gallery', status: 'done', usage: usage(1120), tags: ['a', hostile] }),
      await makeRow(out, { batch: 'spring', id: 'row-10', status: 'done', usage: usage(1120), images: 2 }),
      await makeRow(out, { batch: 'spring', id: 'row-9', status: 'done', usage: usage(1120), prompt: hostile }),
      await makeRow(out, { batch: 'spring', id: 'blocked', status: 'failed', reason: `prompt blocked (${hostile})`, usage: usage(0) }),
      // Refused before an answer: a failed row, not billed, so not in the ledger.
      await makeRow(out, { batch: 'spring', id: 'bad-ref', status: 'failed', reason: 'reference image missing' }),
      // A sub-batch and another batch: in the ledger, not on this page, not in its totals.
      await makeRow(out, { batch: 'spring/late', id: 'x', status: 'done', usage: usage(1120) }),
      await makeRow(out, { batch: 'summer', id: 'y', status: 'done', usage: usage(1120) }),
    ];
    await writeLedger(out, entries, '{"ts":"2026-11-20T10:0'); // a line cut short by a crash
    const summary = await buildGallery({ out, batch: 'spring', prices, generatedAt: new Date(TS) });
    expect(summary.file).toBe(join(out, 'spring.gallery.html'));
    expect(galleryPath(out, 'spring/late')).toBe(join(out, 'spring', 'late.gallery.html'));
    expect(summary).toMatchObject({ rows: 5, done: 3, failed: 2, images: 4, thumbnails: 4, problems: 0, unreadableSidecars: 0 });
    const billed = entries.slice(0, 4).reduce((sum, entry) => sum + priceOf(PRO, entry!.usageMetadata ?? {}), 0n);
    expect(summary.ledger.totals).toMatchObject({ requests: 4, images: 4, failedRows: 1 });
    expect(BigInt(Math.round(summary.ledger.totals.costUsd * 1e12))).toBe(billed);

    const html = await readFile(summary.file, 'utf8');
    // The row called `gallery` still has its sidecar and image: the page is not in the folder.
    expect(JSON.parse(await readFile(join(out, 'spring', 'gallery.json'), 'utf8')).id).toBe('gallery');
    expect(html).toContain(`data-total="cost"><span class="usd" data-usd="${exactUsd(billed)}"`);
    expect(html).toContain(`data-rows="cost"><span class="usd" data-usd="${exactUsd(billed)}"`);
    expect(html).toContain('data-total="images">4<');
    expect(html).toContain('data-total="failed">1<');
    expect(html).toContain('unreadable ledger line skipped');
    // Nothing hostile comes through as markup: one script element, the page's own.
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).toContain(escapeHtml(hostile));
    expect(html).toContain('reference image missing');
    expect(html).toContain('not billed');
    // Rows in the order people expect, numbers by value.
    const order = [...html.matchAll(/<article class="card \w+" id="row-([^"]+)"/g)].map((match) => match[1]);
    expect(order).toEqual(['bad-ref', 'blocked', 'gallery', 'row-9', 'row-10']);
    // Thumbnails only: 256 px WebP, none of the 1024 px PNG.
    expect(html).not.toContain(png.toString('base64').slice(0, 100));
    const thumbs = [...html.matchAll(/<img src="data:image\/webp;base64,([^"]+)" width="(\d+)" height="(\d+)"/g)];
    expect(thumbs).toHaveLength(4);
    for (const [, data, width, height] of thumbs) {
      expect([width, height]).toEqual(['256', '192']);
      const meta = await sharp(Buffer.from(data!, 'base64')).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['webp', 256, 192]);
    }
    expect(html).toContain('(1024×768 px)');
    expect(html).toContain('href="spring/row-10-2.png"');
    // Nothing the page could fetch: only data: images, and a policy that allows nothing else.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).toContain(escapeHtml("default-src 'none'; img-src data:"));
    expect(html).not.toContain('The ledger counts every billed answer');
  });

  it('says why the ledger total is above the per-row costs when a row was billed twice', async () => {
    const out = join(dir, 'twice');
    const entry = await makeRow(out, { batch: 'b', id: 'r1', status: 'done', usage: usage(1120) });
    await writeLedger(out, [entry, { ...entry!, attempt: 2 }]);
    const summary = await buildGallery({ out, batch: 'b', prices });
    expect(summary.ledger.totals.requests).toBe(2);
    const html = await readFile(summary.file, 'utf8');
    expect(html).toContain('The ledger counts every billed answer');
    expect(html).toContain(`data-total="cost"><span class="usd" data-usd="${exactUsd(2n * priceOf(PRO, entry!.usageMetadata ?? {}))}"`);
    expect(html).toContain(`data-rows="cost"><span class="usd" data-usd="${exactUsd(priceOf(PRO, entry!.usageMetadata ?? {}))}"`);
  });

  it('keeps going past missing images, stray JSON files and sidecars of other batches, and says so', async () => {
    const out = join(dir, 'odd');
    const entries = [
      await makeRow(out, { batch: 'b', id: 'gone', status: 'done', usage: usage(1120), files: false }),
      await makeRow(out, { batch: 'b', id: 'ok', status: 'done', usage: usage(1120) }),
      await makeRow(out, { batch: 'b', id: 'unpriced', status: 'done', usage: usage(1120), model: 'some-new-model' }),
    ];
    await writeLedger(out, entries);
    await writeFile(join(out, 'b', 'notes.json'), '{"hello": 1}');
    await writeFile(join(out, 'b', 'broken.json'), '{"batch": "b", "id": ');
    const copied = JSON.parse(await readFile(join(out, 'b', 'ok.json'), 'utf8')) as Sidecar;
    await writeFile(join(out, 'b', 'copied.json'), JSON.stringify({ ...copied, batch: 'elsewhere', id: 'copied' }));
    await mkdir(join(out, 'b', '.partial'), { recursive: true });
    await writeFile(join(out, 'b', '.partial', 'x.json'), '{}');
    const summary = await buildGallery({ out, batch: 'b', prices });
    expect(summary).toMatchObject({ rows: 3, thumbnails: 2, problems: 1, unreadableSidecars: 3 });
    const html = await readFile(summary.file, 'utf8');
    expect(html).toContain('image file missing: gone.png');
    expect(html).toContain('notes.json: not a sidecar');
    expect(html).toContain('broken.json: ');
    expect(html).toContain('copied.json: belongs to batch &quot;elsewhere&quot;');
    expect(html).toContain('NO PRICE for model &quot;some-new-model&quot;');
    expect(html).toMatch(/data-total="cost"><span[^>]*>\$[\d.]+<\/span> \+ \?/);
    expect(html).toContain('no price');
  });

  it('makes a page of hundreds of rows a few thumbnails at a time, in row order', async () => {
    const out = join(dir, 'many');
    const small = await sharp(png).resize(64).png().toBuffer();
    await mkdir(join(out, 'big'), { recursive: true });
    const entries: LedgerEntry[] = [];
    const rows = 400;
    await Promise.all(
      Array.from({ length: rows }, async (_, index) => {
        const id = `row-${index + 1}`;
        const metadata = usage(1120);
        const sidecar = {
          batch: 'big', id, status: 'done', prompt: `p${index}`, parameters: { model: PRO, referenceImages: [] }, tags: [`t${index % 7}`], metadata: {},
          images: [{ file: `${id}.png`, mimeType: 'image/png', bytes: small.length }], texts: [], usageMetadata: metadata,
          costUsd: picoToUsd(priceOf(PRO, metadata)), attempt: 1, timings: { startedAt: TS, finishedAt: TS, durationMs: 1 },
        };
        await writeFile(join(out, 'big', `${id}.png`), small);
        await writeFile(join(out, 'big', `${id}.json`), JSON.stringify(sidecar));
        entries.push({ ts: TS, batch: 'big', rowId: id, model: PRO, attempt: 1, outcome: 'done', images: 1, tags: [], usageMetadata: metadata, host: 'h', pid: 1 });
      }),
    );
    await writeLedger(out, entries);
    const output = join(dir, 'pages', 'big.html');
    const summary = await buildGallery({ out, batch: 'big', prices, output, concurrency: 3 });
    expect(summary).toMatchObject({ file: output, rows, thumbnails: rows, problems: 0 });
    const html = await readFile(output, 'utf8');
    const order = [...html.matchAll(/id="row-(row-\d+)"/g)].map((match) => match[1]);
    expect(order).toEqual(Array.from({ length: rows }, (_, index) => `row-${index + 1}`));
    // Links to the full images are relative to where the page is.
    expect(html).toContain('href="../many/big/row-1.png"');
    expect(html).toContain('<option value="&quot;t3&quot;">t3 (57)</option>');
  });

  it('refuses what it cannot do, as bad usage (exit 2)', async () => {
    const out = join(dir, 'usage');
    await mkdir(out, { recursive: true });
    await expect(galleryCommand({ out })).rejects.toThrow(UsageError);
    await expect(galleryCommand({ out, batch: '../etc' })).rejects.toThrow(/batch name/);
    await expect(galleryCommand({ out, batch: 'nothing-here' })).rejects.toThrow(/no folder .*nothing-here/);
    await mkdir(join(out, 'a.gallery.html'), { recursive: true });
    await makeRow(out, { batch: 'a', id: 'r', status: 'failed', reason: 'x' });
    await expect(galleryCommand({ out, batch: 'a' })).rejects.toThrow(/is a folder/);
    const cli = await runInProcess(['gallery', '--batch', 'nothing-here', '--out', out]);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/^error: no folder .*nothing-here/m);
  });
});
