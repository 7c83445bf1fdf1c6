/**
 * Memory: the peak RSS of a worker process when every answer is a 4K image (about 20 MB of
 * base64, after two interim thought images of about 5 MB each) and 32 calls are in flight.
 *
 * The rows are enqueued, then `tokenhot-batch work --until-drained --concurrency 32` works them
 * against a mock in a process of its own; a preload in the worker reports its peak RSS
 * (`process.resourceUsage().maxRSS`, bench/lib/report-usage.mjs) at exit. The in-process `run --concurrency 32` is measured
 * the same way, and, for scale, the bare client of the overhead benchmark, which parses whole
 * bodies with JSON.parse.
 *
 *   npm run bench:memory          # BENCH_ROWS=160 BENCH_CONCURRENCY=32
 *
 * Prints one line; the runs' details go to stderr.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  checkRedis,
  envNumber,
  fixed,
  machine,
  main,
  mb,
  MOCK_KEY,
  REDIS_URL,
  redisPrefix,
  removePrefix,
  runBenchScript,
  runCli,
  startImageMock,
  tempDir,
  type ProcessResult,
} from './lib/harness.js';
import type { BareSpec } from './lib/bare-client.js';
import { workloadCsv, type WorkloadSpec } from './lib/workload.js';

const TARGET_MB = 300;

await main(async () => {
  const rows = envNumber('BENCH_ROWS', 160);
  const concurrency = envNumber('BENCH_CONCURRENCY', 32);
  const workload: WorkloadSpec = { count: rows, model: 'gemini-3-pro-image-preview', imageSize: '4K', aspectRatio: '1:1' };
  await checkRedis();

  const work = await tempDir('memory');
  const csv = await workloadCsv(work, 'memory.csv', workload);
  const mock = await startImageMock(workload);
  const env = { TOKENHOT_BASE_URL: mock.url, TOKENHOT_API_KEY: MOCK_KEY };

  const measure = async (name: string, run: (out: string) => Promise<ProcessResult>, imagesIn: (out: string) => string): Promise<number | undefined> => {
    const out = join(work, 'out');
    try {
      const result = await run(out);
      const images = (await readdir(imagesIn(out))).filter((file) => file.endsWith('.jpg')).length;
      if (images !== rows) throw new Error(`${name}: ${images} images for ${rows} rows\n${result.stdout.slice(-1500)}\n${result.stderr.slice(-1500)}`);
      process.stderr.write(`${name}: ${rows} images in ${fixed(result.ms / 1000, 1)} s, peak RSS ${mb(result.maxRssKb)}\n`);
      return result.maxRssKb;
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  };

  const worker = await measure(
    'worker (redis)',
    async (out) => {
      const prefix = redisPrefix('memory');
      const redisEnv = { ...env, TOKENHOT_OUT_DIR: out, REDIS_URL };
      try {
        await runCli(['enqueue', csv, '--batch', 'bench', '--plain', '--prefix', prefix], { env: redisEnv });
        return await runCli(['work', '--until-drained', '--no-catalog', '--concurrency', String(concurrency), '--prefix', prefix], {
          env: { ...redisEnv, LOG_LEVEL: 'warn' },
          measure: true,
        });
      } finally {
        await removePrefix(prefix);
      }
    },
    (out) => join(out, 'bench'),
  );
  const inProcess = await measure(
    'in-process run',
    (out) => runCli(['run', csv, '--batch', 'bench', '--plain', '--concurrency', String(concurrency)], { env: { ...env, TOKENHOT_OUT_DIR: out }, measure: true }),
    (out) => join(out, 'bench'),
  );
  const bare = await measure(
    'bare client (whole bodies, JSON.parse)',
    (out) => {
      const spec: BareSpec = { baseUrl: mock.url, apiKey: MOCK_KEY, outDir: out, concurrency, workload };
      return runBenchScript('bench/lib/bare-client.ts', [JSON.stringify(spec)], { measure: true });
    },
    (out) => out,
  );

  const ok = worker !== undefined && inProcess !== undefined && Math.max(worker, inProcess) / 1024 <= TARGET_MB;
  process.stdout.write(
    `memory: ${rows} rows of 4K (20 MB base64 + 2 thought images of 5 MB), concurrency ${concurrency}: ` +
      `peak RSS worker ${mb(worker)}, in-process run ${mb(inProcess)} (target ≤ ${TARGET_MB} MB${ok ? '' : ', MISSED'}); ` +
      `bare client parsing whole bodies ${mb(bare)}; ${machine()}\n`,
  );
});
