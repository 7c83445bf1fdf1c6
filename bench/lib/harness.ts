/**
 * What the benchmarks share: the built CLI run as a user runs it (a separate process, from
 * dist/), a mock endpoint in a process of its own (so its CPU and memory are not the measured
 * process's), peak RSS of a child, temporary folders and Redis key prefixes that are always
 * cleaned up, and number formatting.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { findImagesModel, nativeSize } from '../../src/providers/openai-images/models.js';
import { generationsBody } from '../../src/providers/openai-images/request.js';
import type { WorkloadSpec } from './workload.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/**
 * The checkout whose built CLI is measured: this one, or another one (BENCH_CLI_ROOT, built) to
 * compare a change with what came before it on the same machine in the same conditions.
 */
export const CLI_ROOT = process.env.BENCH_CLI_ROOT ?? ROOT;
const BIN = join(CLI_ROOT, 'bin', 'tokenhot-batch.js');
const USAGE_PRELOAD = join(ROOT, 'bench', 'lib', 'report-usage.mjs');

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** The key every benchmark's mock requires and its clients send. */
export const MOCK_KEY = 'bench-key';

// ---------------------------------------------------------------------------------------------
// Clean-up: whatever happens (an error, Ctrl-C), temporary folders, Redis prefixes and child
// processes started here go.

const cleanups: (() => Promise<void>)[] = [];

export function onCleanup(step: () => Promise<void>): void {
  cleanups.push(step);
}

export async function cleanUp(): Promise<void> {
  while (cleanups.length > 0) {
    const step = cleanups.pop()!;
    await step().catch((error: unknown) => process.stderr.write(`clean-up: ${String(error)}\n`));
  }
}

/** Runs a benchmark's body, cleans up, and sets the exit code (2 on failure, as the CLI does). */
export async function main(body: () => Promise<void>): Promise<void> {
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write('\ninterrupted: cleaning up\n');
    void cleanUp().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await body();
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 2;
  } finally {
    await cleanUp();
  }
}

export async function tempDir(label: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `tokenhot-bench-${label}-`));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

// ---------------------------------------------------------------------------------------------
// Processes

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
  /** Peak resident set size of the process, when asked for (`measure`). */
  maxRssKb?: number;
  /** CPU time (user + system, all its threads) of the process, when asked for (`measure`). */
  cpuMs?: number;
  /** The highest of each part of `process.memoryUsage()`, in KB, when BENCH_USAGE_SAMPLE_MS is set. */
  peaksKb?: Record<string, number>;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Measure the child's peak RSS and CPU time (a preload writes them at exit). */
  measure?: boolean;
  /** A non-zero exit is an error unless this is set. */
  allowFailure?: boolean;
}

/** The environment without the caller's Tokenhot and Redis settings, plus `env`. */
function childEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(base)) if (key.startsWith('TOKENHOT_') || key === 'REDIS_URL' || key === 'LOG_LEVEL') delete base[key];
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete base[key];
    else base[key] = value;
  }
  return base;
}

const running = new Set<ChildProcess>();
onCleanup(async () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Runs `node [nodeArgs] script args` to its end. */
export async function runNode(nodeArgs: string[], args: string[], options: RunOptions = {}): Promise<ProcessResult> {
  const usageFile = options.measure ? join(tmpdir(), `tokenhot-bench-usage-${process.pid}-${randomBytes(4).toString('hex')}`) : undefined;
  const env = childEnv({ ...options.env, ...(usageFile ? { BENCH_USAGE_FILE: usageFile } : {}) });
  const preload = usageFile ? ['--import', USAGE_PRELOAD] : [];
  const started = performance.now();
  const child = spawn(process.execPath, [...preload, ...nodeArgs, ...args], { cwd: options.cwd ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  const ms = performance.now() - started;
  running.delete(child);
  const result: ProcessResult = { code, stdout, stderr, ms };
  if (usageFile) {
    const usage = JSON.parse(await readFile(usageFile, 'utf8').catch(() => '{}')) as Pick<ProcessResult, 'maxRssKb' | 'cpuMs' | 'peaksKb'>;
    await rm(usageFile, { force: true });
    if (usage.maxRssKb !== undefined) result.maxRssKb = usage.maxRssKb;
    if (usage.cpuMs !== undefined) result.cpuMs = usage.cpuMs;
    if (usage.peaksKb !== undefined) result.peaksKb = usage.peaksKb;
  }
  if (code !== 0 && !options.allowFailure) {
    throw new Error(`${[...nodeArgs, ...args].join(' ')} exited with ${String(code)}\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`);
  }
  return result;
}

/** The built CLI started for as long as the caller likes (a worker); `stop` sends SIGTERM. */
export function startCli(args: string[], options: Omit<RunOptions, 'measure'> = {}): { stop(): Promise<void> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? ROOT, env: childEnv(options.env), stdio: ['ignore', 'ignore', 'inherit'] });
  running.add(child);
  return {
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      running.delete(child);
    },
  };
}

/** The built CLI (`bin/tokenhot-batch.js`, i.e. dist/), as a user runs it. */
export function runCli(args: string[], options: RunOptions = {}): Promise<ProcessResult> {
  return runNode([], [BIN, ...args], options);
}

/** A TypeScript file of bench/ in its own process. */
export function runBenchScript(script: string, args: string[], options: RunOptions = {}): Promise<ProcessResult> {
  return runNode(['--import', 'tsx'], [join(ROOT, script), ...args], options);
}

export interface Mock {
  url: string;
  /** CPU seconds the mock has used so far (Linux), to tell whose CPU a run took. */
  cpuSeconds(): Promise<number | undefined>;
  /** Stops the mock now rather than at clean-up. */
  stop(): Promise<void>;
}

/** `tokenhot-batch mock-server` on a free port, stopped at clean-up. */
export async function startMock(args: string[]): Promise<Mock> {
  const child = spawn(process.execPath, [BIN, 'mock-server', '--port', '0', '--api-key', MOCK_KEY, ...args], {
    cwd: ROOT,
    env: childEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
  };
  onCleanup(stop);
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mock-server did not start: ${stderr}`)), 30_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /mock endpoint on (http:\/\/[\d.:]+)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', () => reject(new Error(`mock-server exited: ${stderr}`)));
  });
  return {
    url,
    stop,
    async cpuSeconds() {
      try {
        const fields = (await readFile(`/proc/${child.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
        // utime and stime, fields 14 and 15 of stat (11 and 12 after the command name).
        return (Number(fields[11]) + Number(fields[12])) / 100;
      } catch {
        return undefined;
      }
    },
  };
}

/**
 * A mock answering real images, warmed up with one request of the workload's kind so that it
 * renders (and caches) its images before anything is timed: the first contender must not pay.
 * Models of the images endpoint are warmed up with the body the product sends for the workload.
 */
export async function startImageMock(workload: WorkloadSpec): Promise<Mock> {
  const mock = await startMock(['--payload', 'real']);
  const response = await fetch(warmUpUrl(mock.url, workload), {
    method: 'POST',
    headers: { authorization: `Bearer ${MOCK_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(warmUpBody(workload)),
  });
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`mock warm-up answered ${response.status}`);
  return mock;
}

function warmUpUrl(base: string, workload: WorkloadSpec): string {
  return findImagesModel(workload.model) ? `${base}/v1/images/generations` : `${base}/v1beta/models/${workload.model}:generateContent/`;
}

function warmUpBody(workload: WorkloadSpec): unknown {
  const model = findImagesModel(workload.model);
  if (!model) {
    return {
      contents: [{ role: 'user', parts: [{ text: 'warm-up' }] }],
      generationConfig: { responseModalities: ['TEXT', 'IMAGE'], imageConfig: { aspectRatio: workload.aspectRatio, imageSize: workload.imageSize } },
    };
  }
  const options = workload.size ? { size: workload.size } : { imageSize: workload.imageSize, aspectRatio: workload.aspectRatio };
  const row = { id: 'warm-up', line: 2, prompt: 'warm-up', model: model.id, ...options, referenceImages: [], tags: [], metadata: {} };
  return generationsBody(model, row, nativeSize(model, row), undefined);
}

// ---------------------------------------------------------------------------------------------
// Redis

/** A key prefix of this run only; its keys are removed at clean-up (never FLUSHALL). */
export function redisPrefix(label: string): string {
  const prefix = `bench-${label}-${process.pid}-${randomBytes(3).toString('hex')}`;
  onCleanup(() => removePrefix(prefix));
  return prefix;
}

export async function removePrefix(prefix: string): Promise<void> {
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', '5000');
      cursor = next;
      if (keys.length > 0) await client.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

/** Fails early and plainly when the Redis a benchmark needs is not there. */
export async function checkRedis(): Promise<void> {
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true, connectTimeout: 3_000, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw new Error(`this benchmark needs Redis at ${REDIS_URL} (set REDIS_URL): ${(error as Error).message}`);
  } finally {
    client.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// Figures

/** `2 cores, 23 GB RAM`, as the README's table states the machine. */
export function machine(): string {
  // As `nproc` and `free -g` say it (free -g rounds down).
  return `${availableParallelism()} cores, ${Math.floor(totalmem() / 2 ** 30)} GB RAM`;
}

export function envNumber(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`${name}="${value}" is not a positive number`);
  return parsed;
}

export function fixed(value: number, digits = 1): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function mb(kb: number | undefined): string {
  return kb === undefined ? '?' : `${fixed(kb / 1024, 0)} MB`;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
