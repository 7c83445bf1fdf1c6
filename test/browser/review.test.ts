/**
 * The review page in real headless Chromium: a batch of ten made by `run` against a
 * `mock-server` process, the page of a `review` process; three images approved (by button and by
 * keys), two rejected with notes; after a reload the decisions are still there, and `review
 * list` lists the two rejected. A post from a page of another origin is refused (403).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli, startMockProcess, type CliProcess, type MockProcess } from '../helpers/processes.js';
import { launchChromium, RESULTS, type Browser } from './chromium.js';
import { KEY, writeCsv } from './pipeline.js';
import { runInProcess } from '../helpers/cli-in-process.js';

const BATCH = 'bags';

let dir: string;
let out: string;
let env: Record<string, string>;
let mock: MockProcess | undefined;
let review: CliProcess | undefined;
let browser: Browser | undefined;
let page: Page;
let url: string;
const consoleErrors: string[] = [];

async function startReview(): Promise<string> {
  review = startCli(['review', out, '--batch', BATCH, '--port', '0'], env);
  const started = Date.now();
  for (;;) {
    const match = review.stderr().match(/review page on (http:\/\/127\.0\.0\.1:\d+\/review\/\S+)/);
    if (match) return match[1]!;
    if (review.child.exitCode !== null || Date.now() - started > 20_000) throw new Error(`review did not start: ${review.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const card = (id: string) => page.locator(`article.card[data-row="${id}"]`);
const count = async (filter: string): Promise<string> => page.locator(`[data-filter="${filter}"] .count`).innerText();

beforeAll(async () => {
  browser = await launchChromium();
  dir = await mkdtemp(join(tmpdir(), 'thb-review-browser-'));
  out = join(dir, 'out');
  mock = await startMockProcess(['--api-key', KEY]);
  env = { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: out, TOKENHOT_DURABLE: '0' };
  const rows = Array.from({ length: 10 }, (_, index) => ({ id: `bag-${index + 1}`, prompt: `Leather bag ${index + 1}, studio light`, model: 'gemini-2.5-flash-image' }));
  const run = await runInProcess(['run', await writeCsv(join(dir, 'bags.csv'), rows), '--batch', BATCH, '--plain'], env);
  expect(run.code, run.stderr).toBe(0);
  url = await startReview();
  page = await browser.context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  await page.goto(url);
}, 90_000);

afterAll(async () => {
  await browser?.close();
  if (review && review.child.exitCode === null) {
    review.child.kill('SIGTERM');
    await review.done;
  }
  await mock?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('review page in Chromium', () => {
  it('shows the ten images, loaded from the review server, all unreviewed', async () => {
    await expect.poll(() => page.locator('article.card img').count()).toBe(10);
    await expect
      .poll(() => page.locator('article.card img').evaluateAll((nodes) => (nodes as HTMLImageElement[]).every((img) => img.complete && img.naturalWidth > 0)))
      .toBe(true);
    expect(await count('unreviewed')).toBe('10');
    expect(await count('approved')).toBe('0');
  });

  it('approves three and rejects two with notes, by buttons and keys', async () => {
    await card('bag-1').locator('button.approve').click();
    await expect.poll(() => card('bag-1').getAttribute('data-review')).toBe('approved');
    // Keys: the first card is selected; right arrow to bag-2, `a`; right to bag-3, `a`.
    await page.locator('h1').click();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('a');
    await expect.poll(() => card('bag-2').getAttribute('data-review')).toBe('approved');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('a');
    await expect.poll(() => card('bag-3').getAttribute('data-review')).toBe('approved');

    await card('bag-4').locator('input.note').fill('strap has three buckles');
    await card('bag-4').locator('button.reject').click();
    await expect.poll(() => card('bag-4').getAttribute('data-review')).toBe('rejected');
    await card('bag-5').locator('input.note').fill('logo <b>misspelled</b>');
    // Typing the note, then `r` once the field is left.
    await card('bag-5').locator('.id').click();
    await page.keyboard.press('r');
    await expect.poll(() => card('bag-5').getAttribute('data-review')).toBe('rejected');

    expect(await count('approved')).toBe('3');
    expect(await count('rejected')).toBe('2');
    expect(await count('unreviewed')).toBe('5');
  });

  it('keeps the decisions across a reload, notes shown as text', async () => {
    await page.reload();
    await expect.poll(() => page.locator('article.card').count()).toBe(10);
    for (const id of ['bag-1', 'bag-2', 'bag-3']) expect(await card(id).getAttribute('data-review'), id).toBe('approved');
    for (const id of ['bag-4', 'bag-5']) expect(await card(id).getAttribute('data-review'), id).toBe('rejected');
    expect(await card('bag-6').getAttribute('data-review')).toBe('unreviewed');
    expect(await card('bag-5').locator('.state').innerText()).toContain('logo <b>misspelled</b>');
    expect(await card('bag-5').locator('b').count()).toBe(0);
    expect(await count('approved')).toBe('3');
    expect(await count('rejected')).toBe('2');

    await page.click('[data-filter="rejected"]');
    expect(await page.locator('article.card').evaluateAll((nodes) => nodes.map((node) => (node as HTMLElement).dataset.row))).toEqual(['bag-4', 'bag-5']);
    await page.screenshot({ path: join(RESULTS, 'review-rejected.png'), fullPage: true });
    await page.click('[data-filter="all"]');
    expect(consoleErrors).toEqual([]);
  });

  it('lists the two rejected rows in the CLI', async () => {
    const listed = await runInProcess(['review', 'list', '--out', out, '--rejected', '--format', 'json'], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { rowId: string; note: string }[]).map((row) => [row.rowId, row.note])).toEqual([
      ['bag-4', 'strap has three buckles'],
      ['bag-5', 'logo <b>misspelled</b>'],
    ]);
  });

  it('refuses a decision posted by a page of another origin', async () => {
    // Another origin (the mock's port): a cross-site post, as a form could send it without a preflight.
    const other = await browser!.context.newPage();
    const target = `${new URL(url).origin}/review/${BATCH}/decisions`;
    const statuses: number[] = [];
    other.on('response', (response) => {
      if (response.url() === target) statuses.push(response.status());
    });
    await other.goto(`${mock!.url}/__mock/requests`);
    const type = await other.evaluate(async (action) => {
      const response = await fetch(action, { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body: '{"rowId":"bag-6","decision":"approved"}' });
      return response.type;
    }, target);
    expect(type).toBe('opaque');
    await expect.poll(() => statuses).toEqual([403]);
    await other.close();
    const listed = await runInProcess(['review', 'list', '--out', out, '--approved', '--format', 'json'], env);
    expect((JSON.parse(listed.stdout) as { rowId: string }[]).map((row) => row.rowId)).toEqual(['bag-1', 'bag-2', 'bag-3']);
  });
});
