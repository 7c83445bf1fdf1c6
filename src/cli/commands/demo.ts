/**
 * `tokenhot-batch demo`: the example catalog against a built-in mock endpoint, start to finish.
 * Needs nothing but Node: no key, no Redis, no network.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadConfig } from '../../core/config.js';
import type { Logger } from '../../core/log.js';
import { startMockServer } from '../../mock/index.js';
import { packageRoot } from '../../core/package-root.js';
import { createPipeline } from '../../run/pipeline.js';
import { runFileInProcess } from './run.js';
import { rowInput } from './job-input.js';
import { warnOnStderr } from './csv-input.js';

/** Marks a folder as the demo's own, so that the next demo may empty it. */
const DEMO_MARKER = '.tokenhot-demo';

export interface DemoFlags {
  out?: string;
  plain?: boolean;
  /** The Shopify example: a product feed and three shots per product (jobs/shopify-nightly.yaml). */
  shopify?: boolean;
}

/** The shop's photo host in the example feed; the demo's copy points at the mock, which serves the photos. */
const EXAMPLE_PHOTO_HOST = 'https://cdn.example-shop.com/';

/**
 * The Shopify example's job, copied into the demo folder with its feed's photo links pointing at
 * the mock (the example's shop does not exist); the same job file otherwise.
 */
async function shopifyJob(outDir: string, mockUrl: string): Promise<string> {
  const jobs = join(packageRoot(), 'jobs');
  const feed = (await readFile(join(jobs, 'examples', 'shopify-products.csv'), 'utf8')).replaceAll(EXAMPLE_PHOTO_HOST, `${mockUrl}/`);
  await writeFile(join(outDir, 'shopify-products.csv'), feed);
  const job = (await readFile(join(jobs, 'shopify-nightly.yaml'), 'utf8')).replace(/^feed: .*$/m, 'feed: shopify-products.csv');
  await writeFile(join(outDir, 'shopify-nightly.yaml'), job);
  return join(outDir, 'shopify-nightly.yaml');
}

export async function demoCommand(flags: DemoFlags, log: Logger): Promise<number> {
  // Both API families side by side, so the report compares what each model costs.
  const csvPath = join(packageRoot(), 'jobs', 'examples', 'catalog-all-models.csv');
  const outDir = resolve(flags.out ?? join('output', 'demo'));
  // The demo starts afresh each time, but only ever removes a folder it made itself: `--out`
  // pointed at real outputs must not take their ledger with it.
  const marker = join(outDir, DEMO_MARKER);
  const existing = await readdir(outDir).catch(() => []);
  if (existing.length > 0 && !existsSync(marker)) {
    process.stderr.write(`demo: ${outDir} holds files the demo did not make; give --out an empty or new folder\n`);
    return 2;
  }
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  await writeFile(marker, 'made by tokenhot-batch demo, which empties this folder each time it runs\n');

  const apiKey = 'demo-key';
  // A realistic endpoint in miniature: some latency, a small quota (so 429s happen and are
  // waited out), and an occasional 503 (retried).
  const mock = await startMockServer({ apiKey, latencyMs: 300, latencyJitterMs: 900, rps: 5, burst: 5, failRate5xx: 0.05 });
  const jobFile = flags.shopify ? await shopifyJob(outDir, mock.url) : undefined;
  process.stderr.write(`demo: ${jobFile ? `${jobFile} (a Shopify export, 3 shots a product)` : csvPath} → ${outDir}, against a mock endpoint on ${mock.url}\n`);
  const loaded = loadConfig({ out: outDir, concurrency: 8, baseUrl: mock.url }, { ...process.env, TOKENHOT_API_KEY: apiKey, REDIS_URL: '' });
  // Short backoffs, and a short wait after a 429 that names none (the images endpoint's): the
  // demo should take seconds, not minutes.
  const config = { ...loaded, retry: { ...loaded.retry, baseDelayMs: 500, defaultRateLimitMs: 1_000 } };
  const pipeline = await createPipeline(config);
  try {
    const input = await rowInput(jobFile ? undefined : csvPath, jobFile ? { job: jobFile } : { batch: 'catalog' }, config, warnOnStderr);
    const { exitCode } = await runFileInProcess(input, { plain: flags.plain }, pipeline, log);
    const rateLimited = mock.requests.filter((request) => request.kind === 'rate-limited').length;
    const retried = mock.requests.filter((request) => request.status >= 500).length;
    process.stdout.write(
      `\nthe mock answered ${mock.requests.length} requests: ${rateLimited} with 429 (waited out, no attempt used) and ${retried} with 5xx (retried)\n` +
        `images and sidecars: ${join(outDir, input.batch)}\nledger: ${join(outDir, 'ledger')}\n` +
        (jobFile
          ? `manifest: ${join(outDir, input.batch, 'manifest.csv')}\ntry: npx tokenhot-batch report --out ${outDir} --by product (or --by shot,model)\n`
          : `try: npx tokenhot-batch report --out ${outDir} --by provider,model (or --by tag)\n`),
    );
    return exitCode;
  } finally {
    await pipeline.close();
    await mock.close();
  }
}
