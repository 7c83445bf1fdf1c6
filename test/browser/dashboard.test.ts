/**
 * The dashboard in real headless Chromium, over a real queue: `enqueue` and `work
 * --until-drained` processes against a `mock-server` process and Redis (one prompt blocked, one
 * batch over its budget), then `dashboard` as a process of its own.
 */
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { exactUsd } from '../../src/views/gallery-html.js';
import { formatUsd } from '../../src/cost/pricing.js';
import { runCli, startCli, startMockProcess, type CliProcess, type MockProcess } from '../helpers/processes.js';
import { removePrefix, uniquePrefix } from '../helpers/redis.js';
import { launchChromium, RESULTS, type Browser } from './chromium.js';
import { KEY, ledgerFigures, writeCsv } from './pipeline.js';

const redisUrl = inject('redisUrl');
const prefix = uniquePrefix('dashboard');

let dir: string;
let env: Record<string, string>;
let mock: MockProcess | undefined;
let browser: Browser | undefined;
let page: Page;
const dashboards: CliProcess[] = [];

/** `dashboard --port 0` as a process; resolves with its URL once it listens. */
async function startDashboard(extraEnv: Record<string, string> = {}, args: string[] = []): Promise<{ url: string; process: CliProcess }> {
  const process = startCli(['dashboard', '--port', '0', ...args], { ...env, ...extraEnv });
  dashboards.push(process);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dashboard did not start: ${process.stderr()}`)), 20_000);
    const onData = (): void => {
      const match = process.stderr().match(/dashboard on (http:\/\/[\d.:]+)\//);
      if (match) {
        clearTimeout(timer);
        process.child.stderr!.off('data', onData);
        resolve(match[1]!);
      }
    };
    process.child.stderr!.on('data', onData);
    process.child.once('exit', () => reject(new Error(`dashboard exited: ${process.stderr()}`)));
  });
  return { url, process };
}

/** A raw HTTP request, so the Host and Origin headers are exactly as given. */
function httpRequest(url: string, options: { method?: string; headers?: Record<string, string> }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

let url: string;

beforeAll(async () => {
  // The browser first: without Chromium this fails at once, saying why.
  browser = await launchChromium();
  dir = await mkdtemp(join(tmpdir(), 'thb-dashboard-browser-'));
  mock = await startMockProcess(['--api-key', KEY]);
  env = { REDIS_URL: redisUrl, TOKENHOT_QUEUE_PREFIX: prefix, TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: join(dir, 'out'), TOKENHOT_DURABLE: '0' };
  const shop = await writeCsv(join(dir, 'shop.csv'), [
    { id: 'mug', prompt: 'A blue mug on a table', model: 'gemini-3-pro-image-preview', tags: ['kitchen'] },
    { id: 'lamp', prompt: 'A brass lamp', model: 'gemini-3.1-flash-image-preview', tags: ['living'] },
    { id: 'rug', prompt: 'A woven rug <script>alert(1)</script>', model: 'gemini-2.5-flash-image' },
    { id: 'blocked', prompt: 'Something the endpoint refuses [mock:blocked]', model: 'gemini-3-pro-image-preview' },
  ]);
  const capped = await writeCsv(join(dir, 'capped.csv'), [
    { id: 'one', prompt: 'First chair', model: 'gemini-3-pro-image-preview' },
    { id: 'two', prompt: 'Second chair', model: 'gemini-3-pro-image-preview' },
    { id: 'three', prompt: 'Third chair', model: 'gemini-3-pro-image-preview' },
  ]);
  const [a, b] = await Promise.all([
    runCli(['enqueue', shop, '--batch', 'shop', '--plain'], env),
    // One pro image is estimated at about $0.14: room for the first row, the other two wait over budget.
    runCli(['enqueue', capped, '--batch', 'capped', '--budget-usd', '0.2', '--plain'], env),
  ]);
  expect(a.code, a.stderr).toBe(0);
  expect(b.code, b.stderr).toBe(0);
  // One call at a time, so the capped batch's first answer is billed before its next row is checked.
  const work = await runCli(['work', '--until-drained', '--concurrency', '1'], env);
  // 1: the blocked row failed for good.
  expect(work.code, work.stderr).toBe(1);
  ({ url } = await startDashboard());
  page = await browser.context.newPage();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const process of dashboards) {
    if (process.child.exitCode === null && process.child.signalCode === null) {
      process.child.kill('SIGTERM');
      await process.done;
    }
  }
  await mock?.stop();
  await removePrefix(redisUrl, prefix);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('dashboard in Chromium', () => {
  it('lists the batches with counts, spend that matches the ledger, over-budget rows and failed rows with reasons', async () => {
    await page.goto(`${url}/`);
    const shop = page.locator('#batches tr[data-batch="shop"]');
    const field = (row: typeof shop, name: string): Promise<string> => row.locator(`[data-field="${name}"]`).innerText();
    expect(await field(shop, 'rows')).toBe('4');
    expect(await field(shop, 'done')).toBe('3');
    expect(await field(shop, 'failed')).toBe('1');
    expect(await field(shop, 'over-budget')).toBe('0');
    const shopLedger = await ledgerFigures(env.TOKENHOT_OUT_DIR!, 'shop');
    expect(await field(shop, 'spend')).toBe(formatUsd(shopLedger.costPico, 4));
    expect(await shop.locator('[data-field="spend"] .usd').getAttribute('data-usd')).toBe(exactUsd(shopLedger.costPico));

    const capped = page.locator('#batches tr[data-batch="capped"]');
    const cappedLedger = await ledgerFigures(env.TOKENHOT_OUT_DIR!, 'capped');
    expect(await field(capped, 'done')).toBe('1');
    expect(await field(capped, 'over-budget')).toBe('2');
    expect(await field(capped, 'budget')).toBe('$0.20');
    expect(await field(capped, 'spend')).toBe(formatUsd(cappedLedger.costPico, 4));
    expect(await page.locator('.alert').innerText()).toContain('capped is OVER BUDGET: 2 row(s) wait');

    const reason = page.locator('section.failed[data-batch="shop"] li[data-row="blocked"] .reason');
    expect(await reason.innerText()).toMatch(/^prompt blocked \(/);
    await page.screenshot({ path: join(RESULTS, 'dashboard-batches.png'), fullPage: true });
  });

  it('opens Bull Board on the failed image jobs, with the reason', async () => {
    await page.goto(`${url}/`);
    await page.click('text=failed image jobs');
    await page.waitForURL(/\/queues\/queue\/images\?status=failed/);
    await page.getByText(/prompt blocked/).first().waitFor({ timeout: 15_000 });
    expect(await page.getByText('shop/blocked').count()).toBeGreaterThan(0);
    await page.screenshot({ path: join(RESULTS, 'dashboard-bull-board.png'), fullPage: true });
    // Both queues are on the board.
    await page.goto(`${url}/queues/`);
    await page.getByText('catalog', { exact: true }).first().waitFor({ timeout: 15_000 });
    expect(await page.getByText('images', { exact: true }).count()).toBeGreaterThan(0);
  });

  it('serves only loopback names without auth, and takes changes only from its own pages', async () => {
    const rebound = await httpRequest(`${url}/`, { headers: { Host: 'attacker.example:3100' } });
    expect(rebound.status).toBe(403);
    const forged = await httpRequest(`${url}/queues/api/queues/images/retry/failed`, { method: 'PUT', headers: { Origin: 'https://attacker.example' } });
    expect(forged.status).toBe(403);
  });

  it('asks for basic auth when credentials are set', async () => {
    const { url: authUrl, process } = await startDashboard({ TOKENHOT_DASHBOARD_USER: 'ops', TOKENHOT_DASHBOARD_PASSWORD: 's3cret pass' });
    expect(process.stderr()).toContain('basic auth on');
    const anonymous = await fetch(`${authUrl}/`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic /);
    const wrong = await fetch(`${authUrl}/`, { headers: { Authorization: `Basic ${Buffer.from('ops:nope').toString('base64')}` } });
    expect(wrong.status).toBe(401);
    const right = await fetch(`${authUrl}/queues/api/queues`, { headers: { Authorization: `Basic ${Buffer.from('ops:s3cret pass').toString('base64')}` } });
    expect(right.status).toBe(200);
    // Stops cleanly on SIGTERM.
    process.child.kill('SIGTERM');
    const done = await process.done;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stderr).toContain('dashboard stopped');
  });

  it('refuses a non-loopback host without credentials (exit 2)', async () => {
    const result = await runCli(['dashboard', '--host', '0.0.0.0', '--port', '0'], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/refusing to serve the dashboard on 0\.0\.0\.0 without a password/);
    expect(result.stderr).toContain('TOKENHOT_DASHBOARD_USER');
  });
});
