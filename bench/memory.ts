/**
 * Memory: the peak RSS of a worker process when every answer is a 4K image and 32 calls are in
 * flight, for each kind of answer the product reads:
 *   - gemini-3-pro-image-preview 4K: about 20 MB of base64, after two interim thought images of
 *     about 5 MB each (`inlineData`);
 *   - gpt-image-2 at 3840x2160 (its largest) and doubao-seedream-4-5-251128 at 4K (4096x4096),
 *     on /v1/images/generations: 20 MB of base64 in `data[0].b64_json`, or a link (`data[0].url`,
 *     15 MB of image fetched at once; the mock's `[mock:as-url]`, as a gateway may answer).
 *
 * The rows are enqueued, then `tokenhot-batch work --until-drained --concurrency 32` works them
 * against a mock in a process of its own; a preload in the worker reports its peak RSS
 * (`process.resourceUsage().maxRSS`, bench/lib/report-usage.mjs) at exit. The in-process `run --concurrency 32` is measured
 * the same way, and, for scale, the bare client of the overhead benchmark, which parses whole
 * Gemini bodies with JSON.parse.
 *
 *   npm run bench:memory          # BENCH_ROWS=96 BENCH_CONCURRENCY=32; about 2 minutes on 2 cores
 *   BENCH_CASES=gpt-image-2-url,seedream-4k-b64 npm run bench:memory    # some cases only
 *   BENCH_USAGE_SAMPLE_MS=20 npm run bench:memory    # also the highest heap and buffer figures
 *   BENCH_OUTPUT=s3 BENCH_CASES=gemini-4k npm run bench:memory   # also with outputs on a bucket
 *
 * With BENCH_OUTPUT=s3, each case runs again with `--out s3://bench/<case>` on an S3-compatible
 * server (s3rver, in a process of its own, as the tests start it) and says how far the bucket's
 * peak RSS is from the folder's (target: within 50 MB).
 *
 * The mock answers at once, so the 32 answers stream as fast as the process reads them: the
 * worst case for what a process holds at a time.
 *
 * Prints one line per case; the runs' details go to stderr.
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
// The S3-compatible server the tests use (s3rver in a process of its own).
import { startS3Server, type S3Server } from '../test/helpers/s3-server.js';

interface MemoryCase {
  name: string;
  /** What one answer is, for the printed line. */
  words: string;
  workload: Omit<WorkloadSpec, 'count'>;
  targetMb: number;
  /** Also run the bare client (Gemini's answers only: it reads no other shape). */
  bare?: boolean;
}

const SEEDREAM = 'doubao-seedream-4-5-251128';

const CASES: readonly MemoryCase[] = [
  {
    name: 'gemini-4k',
    words: 'gemini-3-pro-image-preview 4K (20 MB base64 + 2 thought images of 5 MB)',
    workload: { model: 'gemini-3-pro-image-preview', imageSize: '4K', aspectRatio: '1:1' },
    // Set before the images endpoint came, for answers carrying 30 MB of base64.
    targetMb: 300,
    bare: true,
  },
  {
    name: 'gpt-image-2-b64',
    words: 'gpt-image-2 3840x2160 b64_json (20 MB base64)',
    workload: { model: 'gpt-image-2', imageSize: '', aspectRatio: '', size: '3840x2160' },
    targetMb: 200,
  },
  {
    name: 'gpt-image-2-url',
    words: 'gpt-image-2 3840x2160 as links (15 MB images)',
    workload: { model: 'gpt-image-2', imageSize: '', aspectRatio: '', size: '3840x2160', links: true },
    targetMb: 200,
  },
  {
    name: 'seedream-4k-b64',
    words: `${SEEDREAM} 4K b64_json (20 MB base64)`,
    workload: { model: SEEDREAM, imageSize: '4K', aspectRatio: '1:1' },
    targetMb: 200,
  },
  {
    name: 'seedream-4k-url',
    words: `${SEEDREAM} 4K as links (15 MB images)`,
    workload: { model: SEEDREAM, imageSize: '4K', aspectRatio: '1:1', links: true },
    targetMb: 200,
  },
];

const IMAGE_FILE = /\.(jpg|png|webp)$/;

interface Measured {
  name: string;
  maxRssKb: number;
  seconds: number;
}

/** Where a measured run writes: a fresh folder, or a bucket's prefix (and its spool) of its own. */
interface Output {
  out: string;
  env: Record<string, string>;
  /** The images of batch `bench`. */
  images(): Promise<number>;
  remove(): Promise<void>;
}

function folderOutput(work: string): Output {
  const out = join(work, 'out');
  return {
    out,
    env: {},
    images: async () => (await readdir(join(out, 'bench')).catch(() => [])).filter((file) => IMAGE_FILE.test(file)).length,
    remove: () => rm(out, { recursive: true, force: true }),
  };
}

let bucketRuns = 0;
function bucketOutput(server: S3Server, work: string): Output {
  const prefix = `run-${++bucketRuns}`;
  const spool = join(work, `spool-${bucketRuns}`);
  return {
    out: `s3://bench/${prefix}`,
    env: { ...server.env, TOKENHOT_SPOOL_DIR: spool },
    images: async () => (await server.objects('bench', `${prefix}/bench/`)).filter((object) => IMAGE_FILE.test(object.key)).length,
    remove: () => rm(spool, { recursive: true, force: true }),
  };
}

/** Runs `run` into a fresh output, checks every row has its image, and returns its peak RSS. */
async function measure(name: string, rows: number, output: Output, run: (out: string, env: Record<string, string>) => Promise<ProcessResult>): Promise<Measured> {
  try {
    const result = await run(output.out, output.env);
    const images = await output.images();
    if (images !== rows) throw new Error(`${name}: ${images} images for ${rows} rows\n${result.stdout.slice(-1500)}\n${result.stderr.slice(-1500)}`);
    if (result.maxRssKb === undefined) throw new Error(`${name}: the process reported no peak RSS`);
    const parts = result.peaksKb ? ` (highest ${Object.entries(result.peaksKb).map(([part, kb]) => `${part} ${mb(kb)}`).join(', ')})` : '';
    process.stderr.write(`${name}: ${rows} images in ${fixed(result.ms / 1000, 1)} s, peak RSS ${mb(result.maxRssKb)}${parts}\n`);
    return { name, maxRssKb: result.maxRssKb, seconds: result.ms / 1000 };
  } finally {
    await output.remove();
  }
}

/** `enqueue`, then one `work --until-drained`, measured. */
async function runWorker(csv: string, out: string, env: Record<string, string>, concurrency: number): Promise<ProcessResult> {
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
}

/** One case against a mock of its own, stopped at its end. */
async function runCase(spec: MemoryCase, rows: number, concurrency: number, bucket: S3Server | undefined): Promise<string> {
  const workload: WorkloadSpec = { ...spec.workload, count: rows };
  const work = await tempDir(`memory-${spec.name}`);
  const csv = await workloadCsv(work, 'memory.csv', workload);
  const mock = await startImageMock(workload);
  try {
    const line = await measureCase(spec, workload, csv, work, mock.url, concurrency);
    return bucket ? `${line}; ${await measureBucket(spec, workload, csv, work, mock.url, concurrency, bucket)}` : line;
  } finally {
    await mock.stop();
  }
}

/** The worker and the in-process run on one output, measured one after the other. */
async function measurePair(label: string, rows: number, csv: string, mockUrl: string, concurrency: number, output: () => Output): Promise<[Measured, Measured]> {
  const env = { TOKENHOT_BASE_URL: mockUrl, TOKENHOT_API_KEY: MOCK_KEY };
  const worker = await measure(`${label} worker (redis)`, rows, output(), (out, extra) => runWorker(csv, out, { ...env, ...extra }, concurrency));
  const inProcess = await measure(`${label} in-process run`, rows, output(), (out, extra) =>
    runCli(['run', csv, '--batch', 'bench', '--plain', '--concurrency', String(concurrency)], { env: { ...env, ...extra, TOKENHOT_OUT_DIR: out }, measure: true }),
  );
  return [worker, inProcess];
}

/** The same case with its outputs on a bucket, against the folder's figures (target: within 50 MB). */
async function measureBucket(spec: MemoryCase, workload: WorkloadSpec, csv: string, work: string, mockUrl: string, concurrency: number, server: S3Server): Promise<string> {
  const [folderWorker, folderRun] = await measurePair(`${spec.name} folder`, workload.count, csv, mockUrl, concurrency, () => folderOutput(work));
  const [worker, inProcess] = await measurePair(`${spec.name} bucket`, workload.count, csv, mockUrl, concurrency, () => bucketOutput(server, work));
  const over = Math.max(worker.maxRssKb - folderWorker.maxRssKb, inProcess.maxRssKb - folderRun.maxRssKb) / 1024;
  return (
    `on a bucket (s3rver): worker ${mb(worker.maxRssKb)}, in-process run ${mb(inProcess.maxRssKb)} against ${mb(folderWorker.maxRssKb)} / ${mb(folderRun.maxRssKb)} on a folder ` +
    `measured beside them: ${over >= 0 ? '+' : ''}${over.toFixed(0)} MB (target ≤ +${BUCKET_MARGIN_MB} MB${over <= BUCKET_MARGIN_MB ? '' : ', MISSED'})`
  );
}

const BUCKET_MARGIN_MB = 50;

async function measureCase(spec: MemoryCase, workload: WorkloadSpec, csv: string, work: string, mockUrl: string, concurrency: number): Promise<string> {
  const rows = workload.count;
  const [worker, inProcess] = await measurePair(spec.name, rows, csv, mockUrl, concurrency, () => folderOutput(work));
  let bare = '';
  if (spec.bare) {
    const bareOutput = folderOutput(work);
    const result = await measure(`${spec.name} bare client (whole bodies, JSON.parse)`, rows, { ...bareOutput, images: async () => (await readdir(bareOutput.out).catch(() => [])).filter((file) => IMAGE_FILE.test(file)).length }, (out) => {
      const bareSpec: BareSpec = { baseUrl: mockUrl, apiKey: MOCK_KEY, outDir: out, concurrency, workload };
      return runBenchScript('bench/lib/bare-client.ts', [JSON.stringify(bareSpec)], { measure: true });
    });
    bare = `; bare client parsing whole bodies ${mb(result.maxRssKb)}`;
  }
  const ok = Math.max(worker.maxRssKb, inProcess.maxRssKb) / 1024 <= spec.targetMb;
  // The worker, the in-process run and (Gemini) the bare client, one after another.
  return (
    `memory ${spec.name}: ${rows} rows of ${spec.words}, concurrency ${concurrency}: ` +
    `peak RSS worker ${mb(worker.maxRssKb)}, in-process run ${mb(inProcess.maxRssKb)} (target ≤ ${spec.targetMb} MB${ok ? '' : ', MISSED'})${bare}`
  );
}

function chosenCases(): MemoryCase[] {
  const asked = (process.env.BENCH_CASES ?? '').split(',').map((name) => name.trim()).filter(Boolean);
  if (asked.length === 0) return [...CASES];
  const unknown = asked.filter((name) => !CASES.some((spec) => spec.name === name));
  if (unknown.length > 0) throw new Error(`BENCH_CASES: no case ${unknown.join(', ')} (there are ${CASES.map((spec) => spec.name).join(', ')})`);
  return CASES.filter((spec) => asked.includes(spec.name));
}

await main(async () => {
  const rows = envNumber('BENCH_ROWS', 96);
  const concurrency = envNumber('BENCH_CONCURRENCY', 32);
  const cases = chosenCases();
  await checkRedis();
  const bucket = process.env.BENCH_OUTPUT === 's3' ? await startS3Server(['bench']) : undefined;
  try {
    for (const spec of cases) {
      // Printed as each case ends: a long run shows its figures as it goes.
      process.stdout.write(`${await runCase(spec, rows, concurrency, bucket)}; ${machine()}\n`);
    }
  } finally {
    await bucket?.stop();
  }
});
