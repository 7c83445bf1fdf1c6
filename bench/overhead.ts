/**
 * Overhead: does the pipeline keep up with the least code that could do the same job?
 *
 * A zero-latency mock answers every row with a 2K image (about 5 MB of base64) and, as Gemini 3
 * pro does, two interim thought images (about 1.25 MB each) before it. 1,000 rows go through:
 *   - the bare baseline (bench/lib/bare-client.ts: p-limit, fetch, JSON.parse, writeFile),
 *   - `tokenhot-batch run` in-process,
 *   - `tokenhot-batch run` with REDIS_URL (enqueue, then a worker in the same process until drained),
 * each in a process of its own against the same mock process, at the same concurrency (8, the
 * product's default), in rounds that alternate the contenders so that a neighbour's load hits
 * them alike. The product runs durable (fsync, its default) and with TOKENHOT_DURABLE=0.
 *
 *   npm run bench:overhead        # BENCH_ROWS=1000 BENCH_ROUNDS=2 BENCH_CONCURRENCY=8
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
  median,
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

const TARGET = 0.9;

interface Variant {
  name: string;
  run(out: string): Promise<ProcessResult>;
  /** Where the run's final images are, to check every row made one. */
  imagesIn(out: string): string;
}

await main(async () => {
  const rows = envNumber('BENCH_ROWS', 1000);
  const rounds = envNumber('BENCH_ROUNDS', 2);
  const concurrency = envNumber('BENCH_CONCURRENCY', 8);
  const workload: WorkloadSpec = { count: rows, model: 'gemini-3-pro-image-preview', imageSize: '2K', aspectRatio: '1:1' };
  await checkRedis();

  const work = await tempDir('overhead');
  const csv = await workloadCsv(work, 'overhead.csv', workload);
  const mock = await startImageMock(workload);

  const productEnv = (durable: boolean): Record<string, string | undefined> => ({
    TOKENHOT_BASE_URL: mock.url,
    TOKENHOT_API_KEY: MOCK_KEY,
    TOKENHOT_DURABLE: durable ? undefined : '0',
  });
  const inProcess = (durable: boolean): Variant => ({
    name: durable ? 'in-process' : 'in-process (no fsync)',
    run: (out) =>
      runCli(['run', csv, '--batch', 'bench', '--plain', '--concurrency', String(concurrency)], { env: { ...productEnv(durable), TOKENHOT_OUT_DIR: out }, measure: true }),
    imagesIn: (out) => join(out, 'bench'),
  });
  const redis = (durable: boolean): Variant => ({
    name: durable ? 'redis' : 'redis (no fsync)',
    async run(out) {
      const prefix = redisPrefix('overhead');
      try {
        return await runCli(['run', csv, '--batch', 'bench', '--plain', '--concurrency', String(concurrency), '--prefix', prefix], {
          env: { ...productEnv(durable), TOKENHOT_OUT_DIR: out, REDIS_URL },
          measure: true,
        });
      } finally {
        await removePrefix(prefix);
      }
    },
    imagesIn: (out) => join(out, 'bench'),
  });
  const bare: Variant = {
    name: 'bare baseline',
    run: (out) => {
      const spec: BareSpec = { baseUrl: mock.url, apiKey: MOCK_KEY, outDir: out, concurrency, workload };
      return runBenchScript('bench/lib/bare-client.ts', [JSON.stringify(spec)], { measure: true });
    },
    imagesIn: (out) => out,
  };
  const variants = [bare, inProcess(true), redis(true), inProcess(false), redis(false)];

  const rates = new Map<string, number[]>(variants.map((variant) => [variant.name, []]));
  // CPU time per image of the measured process: steadier than the rate when neighbours load the
  // machine, and what "no overhead" means once the CPU is the limit.
  const cpuPerImage = new Map<string, number[]>(variants.map((variant) => [variant.name, []]));
  for (let round = 0; round < rounds; round++) {
    // Each round starts with a different contender, so none always runs first or last.
    const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
    for (const variant of order) {
      const out = join(work, 'out');
      try {
        const mockCpuBefore = await mock.cpuSeconds();
        const result = await variant.run(out);
        const mockCpu = (await mock.cpuSeconds()) ?? Number.NaN;
        const images = (await readdir(variant.imagesIn(out))).filter((name) => name.endsWith('.jpg')).length;
        if (images !== rows) throw new Error(`${variant.name}: ${images} images for ${rows} rows\n${result.stdout.slice(-1500)}`);
        const rate = rows / (result.ms / 1000);
        rates.get(variant.name)!.push(rate);
        const cpu = (result.cpuMs ?? Number.NaN) / rows;
        cpuPerImage.get(variant.name)!.push(cpu);
        process.stderr.write(
          `round ${round + 1}: ${variant.name}: ${rows} images in ${fixed(result.ms / 1000, 2)} s = ${fixed(rate)} img/s, ` +
            `CPU ${fixed(cpu)} ms/image (mock CPU ${fixed(mockCpu - (mockCpuBefore ?? Number.NaN), 2)} s)\n`,
        );
      } finally {
        // 1,000 2K images are ~4 GB: never keep two runs' worth.
        await rm(out, { recursive: true, force: true });
      }
    }
  }

  const best = (name: string): number => Math.max(...rates.get(name)!);
  const base = best(bare.name);
  const ratio = (name: string): string => fixed(best(name) / base, 2);
  const rate = (name: string): string => `${fixed(best(name))} img/s`;
  const cpu = (name: string): string => `${fixed(median(cpuPerImage.get(name)!))} ms`;
  const missed = Math.min(best('in-process'), best('redis')) / base < TARGET ? ', MISSED' : '';
  process.stdout.write(
    `overhead: ${rows.toLocaleString('en-US')} rows of 2K (5 MB base64 + 2 thought images), concurrency ${concurrency}, best of ${rounds}: ` +
      `in-process ${rate('in-process')}, redis ${rate('redis')}, bare baseline ${rate(bare.name)} → ` +
      `${ratio('in-process')} / ${ratio('redis')} of baseline (target ≥ ${TARGET}${missed}); ` +
      `without fsync (TOKENHOT_DURABLE=0) ${rate('in-process (no fsync)')} / ${rate('redis (no fsync)')} → ` +
      `${ratio('in-process (no fsync)')} / ${ratio('redis (no fsync)')}; ` +
      `CPU per image ${cpu('in-process')} / ${cpu('redis')} / bare ${cpu(bare.name)}; ${machine()}\n`,
  );
});
