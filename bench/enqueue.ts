/**
 * Enqueue: a 100,000-row CSV into the queue, against a bare addBulk loop of the same rows.
 *
 * Both run in this process, on the built code (dist/), alternating in rounds, each round into a
 * key prefix of its own:
 *   - the product: `enqueueCsv` as `tokenhot-batch enqueue` calls it (streams the CSV through
 *     csv-parse and the row checks, checks "already queued" per chunk, addBulk in chunks of 500,
 *     marks the rows queued);
 *   - the baseline: the rows already in memory (read beforehand, untimed), `queue.addBulk` in
 *     chunks of 500 with the same job ids, data and options, and nothing else.
 * Then the CLI itself (`tokenhot-batch enqueue`, its own process) enqueues the file and a file
 * twice as long, for its peak RSS: flat memory means the two are about the same.
 *
 *   npm run bench:enqueue         # BENCH_ROWS=100000 BENCH_ROUNDS=3
 *
 * Prints one line; the runs' details go to stderr.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Queue } from 'bullmq';
import {
  checkRedis,
  envNumber,
  fixed,
  machine,
  main,
  mb,
  REDIS_URL,
  redisPrefix,
  removePrefix,
  CLI_ROOT,
  runCli,
  tempDir,
} from './lib/harness.js';
import { workloadCsv, type WorkloadSpec } from './lib/workload.js';

// The built modules the CLI runs; their types come from the sources they are built from.
type EnqueueModule = typeof import('../src/queue/enqueue.js');
type QueueModule = typeof import('../src/queue/queue.js');
type BatchStateModule = typeof import('../src/queue/batch-state.js');
type RowsModule = typeof import('../src/rows/csv.js');
type ConfigModule = typeof import('../src/core/config.js');
const dist = (module: string): Promise<unknown> => import(pathToFileURL(join(CLI_ROOT, 'dist', 'src', module)).href);
const { enqueueCsv } = (await dist('queue/enqueue.js')) as EnqueueModule;
const { connectRedis, imageJobOptions, imagesQueue, jobIdFor } = (await dist('queue/queue.js')) as QueueModule;
const { BatchState } = (await dist('queue/batch-state.js')) as BatchStateModule;
const { readRows } = (await dist('rows/csv.js')) as RowsModule;
const { loadConfig } = (await dist('core/config.js')) as ConfigModule;

type ImageJobData = import('../src/queue/queue.js').ImageJobData;
type BatchRow = import('../src/core/types.js').BatchRow;

const TARGET = 0.8;
const CHUNK = 500;
const BATCH = 'bench';

await main(async () => {
  const rows = envNumber('BENCH_ROWS', 100_000);
  const rounds = envNumber('BENCH_ROUNDS', 3);
  const workload: WorkloadSpec = { count: rows, model: 'gemini-3-pro-image-preview', imageSize: '2K', aspectRatio: '1:1' };
  await checkRedis();

  const work = await tempDir('enqueue');
  const csv = await workloadCsv(work, 'enqueue.csv', workload);
  const doubleCsv = await workloadCsv(work, 'enqueue-double.csv', { ...workload, count: rows * 2 });

  const config = loadConfig({}, {});
  const defaults = { model: config.model, aspectRatio: config.aspectRatio, imageSize: config.imageSize };
  const jobOptions = imageJobOptions(config.retry);
  // The baseline's rows are the very rows the product queues, read before anything is timed.
  const batchRows: BatchRow[] = [];
  for await (const read of readRows(csv, { defaults })) {
    if ('problem' in read) throw new Error(`bench CSV has a bad row: ${read.problem.reason}`);
    batchRows.push({ ...read.row, batch: BATCH });
  }

  const connection = await connectRedis(REDIS_URL, 'producer');
  const withQueue = async (run: (queue: Queue<ImageJobData>, prefix: string) => Promise<void>): Promise<number> => {
    const prefix = redisPrefix('enqueue');
    const queue = imagesQueue({ redisUrl: REDIS_URL, prefix }, connection);
    try {
      await queue.waitUntilReady();
      const started = performance.now();
      await run(queue, prefix);
      const ms = performance.now() - started;
      const waiting = await queue.getWaitingCount();
      if (waiting !== rows) throw new Error(`${waiting} jobs waiting for ${rows} rows`);
      return rows / (ms / 1000);
    } finally {
      await queue.close();
      await removePrefix(prefix);
    }
  };

  const bare = async (): Promise<number> =>
    withQueue(async (queue) => {
      for (let i = 0; i < batchRows.length; i += CHUNK) {
        await queue.addBulk(batchRows.slice(i, i + CHUNK).map((row) => ({ name: 'image', data: { row }, opts: { ...jobOptions, jobId: jobIdFor(BATCH, row.id) } })));
      }
    });
  const product = async (): Promise<number> =>
    withQueue(async (queue, prefix) => {
      const summary = await enqueueCsv(queue, new BatchState(connection, prefix), { csvPath: csv, batch: BATCH, defaults, retry: config.retry });
      if (summary.added !== rows) throw new Error(`enqueueCsv added ${summary.added} of ${rows} rows`);
    });

  const rates = { bare: [] as number[], product: [] as number[] };
  try {
    for (let round = 0; round < rounds; round++) {
      // Alternate which goes first, so neither always runs on a Redis the other just filled.
      const order = round % 2 === 0 ? (['bare', 'product'] as const) : (['product', 'bare'] as const);
      for (const name of order) {
        const rate = name === 'bare' ? await bare() : await product();
        rates[name].push(rate);
        process.stderr.write(`round ${round + 1}: ${name === 'bare' ? 'bare addBulk' : 'enqueueCsv'}: ${fixed(rate, 0)} jobs/s\n`);
      }
    }
  } finally {
    connection.disconnect();
  }

  // The CLI as users run it, for its memory (and its rate with process start-up included).
  const cli = async (file: string, count: number): Promise<{ rssKb?: number; rate: number }> => {
    const prefix = redisPrefix('enqueue-cli');
    try {
      const result = await runCli(['enqueue', file, '--batch', BATCH, '--plain', '--prefix', prefix], { env: { REDIS_URL }, measure: true });
      if (!result.stdout.includes(`${count} added`)) throw new Error(`enqueue CLI: ${result.stdout}`);
      process.stderr.write(`tokenhot-batch enqueue, ${count} rows: ${fixed(result.ms / 1000, 2)} s with process start-up, peak RSS ${mb(result.maxRssKb)}\n`);
      return { ...(result.maxRssKb !== undefined ? { rssKb: result.maxRssKb } : {}), rate: count / (result.ms / 1000) };
    } finally {
      await removePrefix(prefix);
    }
  };
  const whole = await cli(csv, rows);
  const double = await cli(doubleCsv, rows * 2);

  const best = (values: number[]): number => Math.max(...values);
  const ratio = best(rates.product) / best(rates.bare);
  process.stdout.write(
    `enqueue: ${rows.toLocaleString('en-US')} rows, best of ${rounds}: enqueueCsv ${fixed(best(rates.product), 0)} jobs/s, ` +
      `bare addBulk ${fixed(best(rates.bare), 0)} jobs/s → ${fixed(ratio, 2)} of baseline (target ≥ ${TARGET}${ratio >= TARGET ? '' : ', MISSED'}); ` +
      `the CLI ${fixed(whole.rate, 0)} jobs/s with process start-up; its peak RSS ${mb(whole.rssKb)} at ${rows.toLocaleString('en-US')} rows, ` +
      `${mb(double.rssKb)} at ${(rows * 2).toLocaleString('en-US')}; ${machine()}\n`,
  );
});
