/**
 * The Shopify example as a catalog job on the queue: every active product gets its three shots,
 * named by handle and shot; the manifest lists each with its cost; the report by product is the
 * mock's bill. Then one product's title is edited and another's first photo replaced at the same
 * URL: the next firing makes exactly the shots those changes touch, and asks nothing else. A
 * feed that loses a column stops the firing with the difference.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CatalogState, type CatalogRun } from '../src/catalog/state.js';
import { BatchState } from '../src/queue/batch-state.js';
import { mockBill, usd } from './helpers/mock-bill.js';
import { ROOT, startCli, startMockProcess, type CliProcess, type MockProcess } from './helpers/processes.js';
import { removePrefix, uniquePrefix } from './helpers/redis.js';
import { runInProcess } from './helpers/cli-in-process.js';

const redisUrl = inject('redisUrl');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const SHOTS = ['hero', 'lifestyle', 'banner'];

describe('the Shopify example as a nightly catalog job', () => {
  let dir: string;
  let mock: MockProcess;
  let client: Redis;
  let worker: CliProcess | undefined;
  const prefix = uniquePrefix('shopify');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'thb-shopify-'));
    mock = await startMockProcess(['--api-key', 'k', '--latency-ms', '5']);
    client = new Redis(redisUrl, { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    if (worker && worker.child.exitCode === null) worker.child.kill('SIGKILL');
    await mock.stop();
    await removePrefix(redisUrl, prefix);
    client.disconnect();
    await rm(dir, { recursive: true, force: true });
  });

  const runsOf = async (): Promise<CatalogRun[]> => (await new CatalogState(client, prefix).runs('shopify-nightly', 100)).reverse();
  async function fire(env: Record<string, string>, firing: number): Promise<CatalogRun> {
    if (firing > 1) await sleep(1_100); // batch names carry the time to the second
    expect((await runInProcess(['schedule', 'run', 'shopify-nightly'], env)).code).toBe(0);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const run = (await runsOf())[firing - 1];
      if (run) {
        const counts = await new BatchState(client, prefix).counts(run.batch);
        if (run.status !== 'ok' || (counts.done + counts.failed === counts.rows && existsSync(join(dir, 'out', run.batch, 'manifest.json')))) return run;
      }
      if (Date.now() > deadline) throw new Error(`firing ${firing} did not settle: ${JSON.stringify(await runsOf())}`);
      await sleep(100);
    }
  }

  it('three shots per active product, a manifest with costs, a report by product equal to the bill; changes remake exactly what they touch', async () => {
    const feed = (await readFile(join(ROOT, 'jobs/examples/shopify-products.csv'), 'utf8')).replaceAll('https://cdn.example-shop.com/', `${mock.url}/`);
    await writeFile(join(dir, 'shopify-products.csv'), feed);
    const job = (await readFile(join(ROOT, 'jobs/shopify-nightly.yaml'), 'utf8'))
      .replace(/^feed: .*$/m, 'feed: shopify-products.csv')
      .replace(/^schedule:\n(  .*\n)+/m, 'schedule: { every: 1h }\n')
      .replace(/^batch: .*$/m, 'batch: "{name}/{date}-{time}"')
      .replace(/^budgetUsd: .*$/m, '');
    await writeFile(join(dir, 'shopify-nightly.yaml'), job);
    const env = { REDIS_URL: redisUrl, TOKENHOT_QUEUE_PREFIX: prefix, TOKENHOT_API_KEY: 'k', TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: join(dir, 'out') };
    expect((await runInProcess(['schedule', 'sync', dir], env)).code).toBe(0);
    worker = startCli(['work', '--concurrency', '8', '--plain'], env);

    // The feed's products: handles of active ones (the draft left out).
    const handles = [...new Set(feed.split('\n').slice(1).map((line) => line.split(',')[0]!).filter(Boolean))];
    const active = handles.filter((handle) => handle !== 'marble-incense-holder');
    expect(active).toHaveLength(29);

    const first = await fire(env, 1);
    expect(first).toMatchObject({ status: 'ok', enqueued: 87, rejected: 0 });
    const manifest = JSON.parse(await readFile(join(dir, 'out', first.batch, 'manifest.json'), 'utf8')) as { rows: { product: string; shot: string; files: string[]; status: string; costUsd: number | null }[] };
    const entries = manifest.rows;
    expect(entries.map((e) => `${e.product}/${e.shot}`).sort()).toEqual(active.flatMap((handle) => SHOTS.map((shot) => `${handle}/${shot}`)).sort());
    for (const entry of entries) {
      expect(entry.status).toBe('done');
      expect(entry.files).toHaveLength(1);
      expect(entry.files[0]).toMatch(new RegExp(`^${first.batch}/${entry.product}--${entry.shot}\\.(png|jpg)$`));
      expect(existsSync(join(dir, 'out', entry.files[0]!)), entry.files[0]).toBe(true);
      expect(entry.costUsd).toBeGreaterThan(0);
    }

    // The report by product: each product's manifest costs, and in total the mock's bill.
    const report = JSON.parse((await runInProcess(['report', '--out', join(dir, 'out'), '--by', 'product', '--format', 'json'])).stdout) as { totals: { costUsd: number }; groups: { key: { product: string }; costUsd: number }[] };
    expect(report.groups).toHaveLength(29);
    for (const group of report.groups) {
      const listed = entries.filter((e) => e.product === group.key.product).reduce((sum, e) => sum + e.costUsd!, 0);
      expect(Math.abs(group.costUsd - listed), group.key.product).toBeLessThan(1e-9);
    }
    const bill = [...mockBill(await mock.requests()).values()].reduce((sum, pico) => sum + pico, 0n);
    expect(Math.abs(report.totals.costUsd - usd(bill))).toBeLessThan(1e-9);

    // One title edited, another product's first photo replaced at the same URL.
    const requestsBefore = (await mock.requests()).length;
    await writeFile(join(dir, 'shopify-products.csv'), feed.replace('Speckled Stoneware Mug,', 'Speckled Stoneware Mug in Oat,'));
    await fetch(`${mock.url}/__mock/photos/espresso-cup-set-1.jpg`, { method: 'POST' });
    const second = await fire(env, 2);
    // The mug: all three shots name its title. The cups: the two shots that send photos (banner sends none).
    expect(second).toMatchObject({ status: 'ok', enqueued: 5, unchanged: 82 });
    const asked = (await mock.requests()).slice(requestsBefore);
    expect(asked).toHaveLength(5);
    const secondManifest = JSON.parse(await readFile(join(dir, 'out', second.batch, 'manifest.json'), 'utf8')) as { rows: { product: string; shot: string }[] };
    expect(secondManifest.rows.map((e) => `${e.product}/${e.shot}`).sort()).toEqual([
      'espresso-cup-set/hero',
      'espresso-cup-set/lifestyle',
      'stoneware-mug-speckled/banner',
      'stoneware-mug-speckled/hero',
      'stoneware-mug-speckled/lifestyle',
    ]);
    // latest/ holds every product's newest image of every shot.
    const latest = JSON.parse(await readFile(join(dir, 'out', 'latest', 'shopify-nightly', 'manifest.json'), 'utf8')) as { entries: unknown[] };
    expect(latest.entries).toHaveLength(87);

    // A feed that lost a column: the firing stops with the difference and queues nothing.
    await writeFile(join(dir, 'shopify-products.csv'), feed.replace(/^Handle,Title,Body \(HTML\),/, 'Handle,Title,Description,'));
    const third = await fire(env, 3);
    expect(third.status).toBe('failed');
    expect(third.reason).toMatch(/the header of feed .*shopify-products\.csv changed since the last firing: "Body \(HTML\)" gone, "Description" new; nothing was queued or removed/);
    expect(third.enqueued).toBe(0);
  });
});
