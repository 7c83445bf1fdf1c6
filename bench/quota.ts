/**
 * Quota use: how much of a provider's quota two `work` processes turn into images.
 *
 * The mock enforces R = 10 requests per second (token bucket, 429 with RetryInfo, no
 * Retry-After) with about 1 s of latency; two workers with concurrency 16 each run for a warm-up
 * and then 60 s of steady state, measured from the mock's own request log: successful requests
 * per second over R, and the share of requests answered 429. Once with the quota unknown to the
 * workers (they learn it), once with `--rpm 600` (they are told).
 *
 *   npm run bench:quota          (builds first; about 3 minutes)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'tokenhot-batch.js');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const R = 10;
const WARM_UP_MS = Number(process.env.BENCH_WARM_UP_MS ?? 15_000);
const STEADY_MS = Number(process.env.BENCH_STEADY_MS ?? 60_000);

interface MockRecord {
  receivedAt: number;
  status: number;
}

/** stderr is read (the mock's address) or passed through; a pipe nobody reads would block the child. */
function start(args: string[], env: NodeJS.ProcessEnv = {}, readStderr = false): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { env: { ...process.env, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'ignore', readStderr ? 'pipe' : 'inherit'] });
}

async function startMock(): Promise<{ url: string; child: ChildProcess }> {
  const child = start(['mock-server', '--port', '0', '--api-key', 'bench', '--rps', String(R), '--latency-ms', '900', '--latency-jitter-ms', '200'], {}, true);
  const url = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const match = text.match(/mock endpoint on (http:\/\/[\d.:]+)/);
      if (match) resolve(match[1]!);
    });
    child.once('exit', () => reject(new Error(`mock-server exited: ${text}`)));
  });
  return { url, child };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function removePrefix(prefix: string): Promise<void> {
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', '1000');
    cursor = next;
    if (keys.length > 0) await client.unlink(...keys);
  } while (cursor !== '0');
  client.disconnect();
}

async function measure(label: string, workArgs: string[]): Promise<{ use: number; share429: number; line: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'thb-bench-quota-'));
  const prefix = `bench-quota-${randomBytes(4).toString('hex')}`;
  const mock = await startMock();
  const env = { REDIS_URL, TOKENHOT_QUEUE_PREFIX: prefix, TOKENHOT_API_KEY: 'bench', TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: join(dir, 'out'), TOKENHOT_DURABLE: '0' };
  const workers: ChildProcess[] = [];
  try {
    const rows = Math.ceil(((WARM_UP_MS + STEADY_MS) / 1000) * R * 1.5);
    const csv = join(dir, 'rows.csv');
    await writeFile(csv, ['id,prompt,model', ...Array.from({ length: rows }, (_, i) => `r${i},"quota bench ${i}",gemini-2.5-flash-image`)].join('\n'));
    const enqueue = start(['enqueue', csv, '--batch', 'quota'], env);
    await new Promise((resolve) => enqueue.once('exit', resolve));

    for (let i = 0; i < 2; i++) workers.push(start(['work', '--concurrency', '16', '--no-catalog', ...workArgs], env));
    await new Promise((resolve) => setTimeout(resolve, WARM_UP_MS));
    const from = Date.now();
    await new Promise((resolve) => setTimeout(resolve, STEADY_MS));
    const to = Date.now();
    // The mock logs a request when it answers it: wait out the latency of those received last.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const records = (await (await fetch(`${mock.url}/__mock/requests`)).json()) as MockRecord[];
    const window = records.filter((record) => record.receivedAt >= from && record.receivedAt < to);
    const ok = window.filter((record) => record.status === 200).length;
    const limited = window.filter((record) => record.status === 429).length;
    const use = ok / ((to - from) / 1000) / R;
    const share429 = window.length > 0 ? limited / window.length : 0;
    return { use, share429, line: `${label} ${use.toFixed(2)} of R (${(share429 * 100).toFixed(1)}% 429s, ${ok} ok / ${window.length} requests in ${((to - from) / 1000).toFixed(0)} s)` };
  } finally {
    await Promise.all(workers.map(stop));
    await stop(mock.child);
    await removePrefix(prefix);
    await rm(dir, { recursive: true, force: true });
  }
}

const unknown = await measure('quota unknown:', []);
const known = await measure('--rpm 600:', ['--rpm', String(R * 60)]);
const pass = unknown.use >= 0.9 && unknown.share429 <= 0.05 && known.use >= 0.97 && known.share429 <= 0.01;
console.log(`quota (R = ${R}/s, 2 workers × 16): ${unknown.line}; ${known.line} — targets ≥ 0.90 with ≤ 5% 429s, ≥ 0.97 with ≤ 1% — ${pass ? 'met' : 'NOT met'}`);
