/**
 * The gallery page in real headless Chromium, made from a real run: `run` against a
 * `mock-server` process (one prompt blocked), then `gallery`, then the page opened from disk
 * and checked for what a person sees. The HTML cost report too: of that run, and of a ledger of
 * both providers with every key, seen in a 1280 px window.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exactUsd } from '../../src/views/gallery-html.js';
import { formatUsd } from '../../src/cost/pricing.js';
import type { LedgerEntry } from '../../src/core/types.js';
import { startMockProcess, type MockProcess } from '../helpers/processes.js';
import { launchChromium, RESULTS, type Browser } from './chromium.js';
import { KEY, ledgerFigures, writeCsv, type LedgerFigures } from './pipeline.js';
import { runInProcess } from '../helpers/cli-in-process.js';

const BATCH = 'spring';

let dir: string;
let out: string;
let mock: MockProcess | undefined;
let browser: Browser | undefined;
let page: Page;
let ledger: LedgerFigures;
const requests: string[] = [];
const consoleErrors: string[] = [];

beforeAll(async () => {
  // The browser first: without Chromium this fails at once, saying why.
  browser = await launchChromium();
  dir = await mkdtemp(join(tmpdir(), 'thb-gallery-browser-'));
  out = join(dir, 'out');
  mock = await startMockProcess(['--api-key', KEY]);
  const csv = await writeCsv(join(dir, 'spring.csv'), [
    { id: 'hero', prompt: 'A lighthouse at dawn, <b>bold</b> & "quoted"', model: 'gemini-3-pro-image-preview', aspectRatio: '16:9', imageSize: '2K', tags: ['seaside', 'hero'] },
    { id: 'bike', prompt: 'A red bicycle against a white wall', model: 'gemini-3.1-flash-image-preview', aspectRatio: '1:1', imageSize: '1K', tags: ['bikes'] },
    { id: 'cats', prompt: 'Two cats on a sofa [mock:two-images]', model: 'gemini-2.5-flash-image', tags: ['cats'] },
    { id: 'blocked', prompt: 'Something the endpoint refuses [mock:blocked]', model: 'gemini-3-pro-image-preview' },
    // A row may be called `gallery`: the page is written beside the batch folder, not in it.
    { id: 'gallery', prompt: '富士山と桜、水彩画', model: 'gemini-2.5-flash-image', tags: ['seaside'] },
  ]);
  const env = { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: out, TOKENHOT_DURABLE: '0' };
  const run = await runInProcess(['run', csv, '--batch', BATCH, '--plain'], env);
  // 1: a row failed (the blocked prompt), the others are done.
  expect(run.code, run.stderr).toBe(1);
  const gallery = await runInProcess(['gallery', '--batch', BATCH], env);
  expect(gallery.code, gallery.stderr).toBe(0);
  expect(gallery.stderr).toContain(`${out}/${BATCH}.gallery.html`);
  ledger = await ledgerFigures(out, BATCH);

  page = await browser.context.newPage();
  page.on('request', (request) => requests.push(request.url()));
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  await page.goto(`file://${out}/${BATCH}.gallery.html`);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await mock?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('gallery page in Chromium', () => {
  it('shows every image as a loaded thumbnail, embedded in the page', async () => {
    const images = await page.locator('article.card img').evaluateAll((nodes) =>
      (nodes as HTMLImageElement[]).map((img) => ({ complete: img.complete, naturalWidth: img.naturalWidth, src: img.currentSrc || img.src })),
    );
    // hero, bike, two of cats, gallery: as many as the ledger's images.
    expect(images.length).toBe(ledger.images);
    expect(images.length).toBe(5);
    for (const image of images) {
      expect(image.complete).toBe(true);
      expect(image.naturalWidth).toBeGreaterThan(0);
      expect(image.naturalWidth).toBeLessThanOrEqual(256);
      expect(image.src.startsWith('data:image/webp;base64,')).toBe(true);
    }
    // The page asked for nothing but itself, and its policy blocked nothing (the filter script ran).
    expect(requests.filter((url) => !url.startsWith('data:'))).toEqual([`file://${out}/${BATCH}.gallery.html`]);
    expect(consoleErrors).toEqual([]);
  });

  it('has totals at the top that match the ledger, and per-row costs that match its lines', async () => {
    expect(await page.locator('[data-total="images"]').innerText()).toBe(String(ledger.images));
    expect(await page.locator('[data-total="failed"]').innerText()).toBe(String(ledger.failed));
    expect(await page.locator('[data-total="requests"]').innerText()).toBe(String(ledger.requests));
    expect(await page.locator('[data-total="cost"]').innerText()).toBe(formatUsd(ledger.costPico, 4));
    expect(await page.locator('[data-total="cost"] .usd').getAttribute('data-usd')).toBe(exactUsd(ledger.costPico));
    // Each row was billed once here, so the per-row costs add up to the ledger total too.
    expect(await page.locator('[data-rows="cost"] .usd').getAttribute('data-usd')).toBe(exactUsd(ledger.costPico));
    expect(await page.locator('[data-rows="done"]').innerText()).toBe('4');
    expect(await page.locator('[data-rows="failed"]').innerText()).toBe('1');
    for (const [id, pico] of ledger.rowCostPico) {
      const cost = page.locator(`#row-${id} [data-field="cost"] .usd`);
      expect(await cost.getAttribute('data-usd'), id).toBe(exactUsd(pico));
      expect(await cost.innerText(), id).toBe(formatUsd(pico, 6));
    }
    const hero = page.locator('#row-hero');
    await expect.poll(() => hero.locator('[data-field="prompt"]').innerText()).toBe('A lighthouse at dawn, <b>bold</b> & "quoted"');
    const heroText = await hero.innerText();
    expect(heroText).toContain('gemini-3-pro-image-preview');
    expect(heroText).toContain('2K');
    expect(heroText).toContain('16:9');
    expect(heroText).toMatch(/tokens\s+[\d,]+ \(prompt \d+, image 1,120/);
    expect(await page.locator('#row-gallery [data-field="prompt"]').innerText()).toBe('富士山と桜、水彩画');
  });

  it('shows the failed row with its reason', async () => {
    const card = page.locator('#row-blocked');
    await expect.poll(() => card.isVisible()).toBe(true);
    expect(await card.getAttribute('data-status')).toBe('failed');
    expect(await card.locator('[data-field="reason"]').innerText()).toMatch(/^prompt blocked \(/);
    expect(await card.locator('img').count()).toBe(0);
    expect(await page.locator('#failed-table tr[data-row="blocked"] .reason').innerText()).toMatch(/^prompt blocked \(/);
    await page.screenshot({ path: join(RESULTS, 'gallery.png'), fullPage: true });
  });

  it('filters by status and by tag', async () => {
    const visibleIds = (): Promise<string[]> =>
      page.locator('article.card:visible').evaluateAll((nodes) => nodes.map((node) => node.id.replace(/^row-/, '')));
    await page.selectOption('#filter-status', 'failed');
    expect(await visibleIds()).toEqual(['blocked']);
    expect(await page.locator('#shown').innerText()).toBe('1 of 5 rows shown');
    await page.selectOption('#filter-status', '');
    await page.selectOption('#filter-tag', { label: 'seaside (2)' });
    expect(await visibleIds()).toEqual(['gallery', 'hero']);
    await page.selectOption('#filter-tag', { label: '(no tag) (1)' });
    expect(await visibleIds()).toEqual(['blocked']);
    await page.selectOption('#filter-status', 'done');
    expect(await visibleIds()).toEqual([]);
    await page.selectOption('#filter-status', '');
    await page.selectOption('#filter-tag', '');
    expect((await visibleIds()).length).toBe(5);
    await page.selectOption('#filter-tag', { label: 'cats (1)' });
    await page.screenshot({ path: join(RESULTS, 'gallery-filtered.png'), fullPage: true });
  });

  it('holds thumbnails, never the full images', async () => {
    const html = await readFile(join(out, `${BATCH}.gallery.html`), 'utf8');
    const full = await readFile(join(out, BATCH, 'hero.jpg'));
    expect(html).not.toContain(full.toString('base64').slice(0, 200));
    expect(html).not.toMatch(/data:image\/(jpeg|png)/);
  });

  it('the HTML cost report of the same run keeps each key on one line, however wide the breakdown', async () => {
    const file = join(dir, 'report.html');
    const report = await runInProcess(['report', '--out', out, '--by', 'model,batch,day,tag', '--format', 'html', '--output', file]);
    expect(report.code, report.stderr).toBe(0);
    const reportPage = await browser!.context.newPage();
    await reportPage.goto(`file://${file}`);
    const keys = await reportPage.$$eval('td.key', (cells) => cells.map((cell) => ({ text: cell.textContent ?? '', height: cell.getBoundingClientRect().height })));
    expect(keys.map((key) => key.text)).toContain('gemini-3.1-flash-image-preview');
    const oneLine = Math.min(...keys.map((key) => key.height));
    for (const key of keys) expect(key.height, key.text).toBeLessThan(oneLine * 1.5);
    await reportPage.screenshot({ path: join(RESULTS, 'report.png'), fullPage: true });
    await reportPage.close();
  });

  it('the HTML cost report leads with money: cost and cost per image right after the keys, in view in a 1280 px window', async () => {
    // Every key at once, with long batch names and tags, and lines of both providers.
    const reportOut = join(dir, 'wide');
    await mkdir(join(reportOut, 'ledger'), { recursive: true });
    const line = (model: string, batch: string, tags: string[], extra: Partial<LedgerEntry>): LedgerEntry => ({
      ts: '2026-11-10T12:00:00.000Z',
      batch,
      rowId: `r-${Math.random()}`,
      model,
      attempt: 1,
      outcome: 'done',
      images: 1,
      tags,
      host: 'h',
      pid: 1,
      ...extra,
    });
    const longBatch = 'catalog-2026-autumn/shoes-boots-and-sandals-for-the-whole-northern-hemisphere';
    const longTag = 'campaign-black-friday-cyber-monday-retargeting-audience-b';
    const lines = [
      line('gemini-3.1-flash-image-preview', longBatch, [longTag, 'hero'], { usageMetadata: { promptTokenCount: 20, candidatesTokenCount: 1120, candidatesTokensDetails: [{ modality: 'IMAGE', tokenCount: 1120 }] } }),
      line('dall-e-3', longBatch, [longTag], { provider: 'openai-images', billing: { images: { count: 1, unit: '1792x1024/hd' } }, usage: {} }),
      line('doubao-seedream-4-5-251128', 'spring', ['hero'], { provider: 'openai-images', billing: { images: { count: 2, unit: 'image' } }, usage: { generated_images: 2 }, images: 2 }),
    ];
    await writeFile(join(reportOut, 'ledger', 'a.jsonl'), lines.map((entry) => `${JSON.stringify(entry)}\n`).join(''));
    const file = join(dir, 'wide-report.html');
    const report = await runInProcess(['report', '--out', reportOut, '--by', 'provider,model,batch,day,tag', '--format', 'html', '--output', file]);
    expect(report.code, report.stderr).toBe(0);
    const reportPage = await browser!.context.newPage();
    await reportPage.setViewportSize({ width: 1280, height: 900 });
    await reportPage.goto(`file://${file}`);
    const headers = await reportPage.$$eval('h2 + .scroll thead th', (cells) => cells.map((cell) => ({ text: cell.textContent ?? '', right: cell.getBoundingClientRect().right })));
    expect(headers.slice(0, 7).map((header) => header.text)).toEqual(['provider', 'model', 'batch', 'day (UTC)', 'tag', 'cost', 'cost per image']);
    const viewport = await reportPage.evaluate(() => document.documentElement.clientWidth);
    expect(viewport).toBeLessThanOrEqual(1280);
    // In view without scrolling: within the window, and within the table's scroll box.
    const box = await reportPage.$eval('h2 + .scroll', (node) => node.getBoundingClientRect().right);
    for (const header of headers.slice(0, 7)) {
      expect(header.right, header.text).toBeLessThanOrEqual(viewport);
      expect(header.right, header.text).toBeLessThanOrEqual(box);
    }
    // A key too long for its column is cut on one line, the whole of it in its tooltip.
    const tag = reportPage.locator(`td.key-tag .cut[title="${longTag}"]`).first();
    expect(await tag.textContent()).toBe(longTag);
    const oneLine = await reportPage.$eval('td.key-day', (cell) => cell.getBoundingClientRect().height);
    expect((await tag.boundingBox())!.height).toBeLessThan(oneLine);
    // The money itself: DALL·E 3 at 1792x1024/hd, $0.12 an image.
    const dalle = reportPage.locator('tr', { has: reportPage.locator('td.key-model', { hasText: 'dall-e-3' }) });
    expect(await dalle.locator('td.money').allInnerTexts()).toEqual(['$0.1200', '$0.1200']);
    await reportPage.screenshot({ path: join(RESULTS, 'report-1280.png') });
    await reportPage.close();
  });
});
