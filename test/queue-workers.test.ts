/**
 * Distributed mode against a real Redis and a `mock-server` process: `enqueue` and `work`
 * processes as a user runs them, killed and restarted the way machines fail.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { geminiTokenCounts } from '../src/gemini/usage.js';
import type { LedgerEntry, UsageMetadata } from '../src/types.js';
import { runCli, startCli, startMockProcess, type CliProcess, type MockProcess, type MockRecord } from './helpers/processes.js';
import { freePort, PrivateRedis, removePrefix, uniquePrefix } from './helpers/redis.js';

const KEY = 'queue-test-key-77';
const MODELS = ['gemini-3-pro-image-preview', 'gemini-3.1-flash-image-preview', 'gemini-2.5-flash-image'];
const redisUrl = inject('redisUrl');
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface CsvRow {
  id: string;
  prompt: string;
  model: string;
}

let dir: string;
const prefixes: string[] = [];
const processes: CliProcess[] = [];
const mocks: MockProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'thb-queue-'));
});
afterEach(async () => {
  for (const process of processes.splice(0)) if (process.child.exitCode === null && process.child.signalCode === null) process.child.kill('SIGKILL');
  for (const mock of mocks.splice(0)) await mock.stop();
  for (const prefix of prefixes.splice(0)) await removePrefix(redisUrl, prefix);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function setup(name: string, mockArgs: string[] = []) {
  const prefix = uniquePrefix(name);
  prefixes.push(prefix);
  const mock = await startMockProcess(['--api-key', KEY, ...mockArgs]);
  mocks.push(mock);
  const out = join(dir, name);
  const env = { REDIS_URL: redisUrl, TOKENHOT_QUEUE_PREFIX: prefix, TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: out };
  return { prefix, mock, out, env };
}

async function writeCsv(name: string, rows: CsvRow[]): Promise<string> {
  const path = join(dir, `${name}.csv`);
  await writeFile(path, ['id,prompt,model', ...rows.map((row) => `${row.id},"${row.prompt.replace(/"/g, '""')}",${row.model}`)].join('\n'));
  return path;
}

function worker(env: Record<string, string>, args: string[] = []): CliProcess {
  // A short lock so a killed worker's jobs come back within seconds (30 s by default).
  const process = startCli(['work', '--until-drained', '--lock-duration', '4000', '--stalled-interval', '1000', ...args], env);
  processes.push(process);
  return process;
}

async function sidecars(out: string, batch: string): Promise<string[]> {
  return (await readdir(join(out, batch)).catch(() => [] as string[])).filter((file) => file.endsWith('.json'));
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

async function ledger(out: string): Promise<LedgerEntry[]> {
  const files = await readdir(join(out, 'ledger')).catch(() => [] as string[]);
  const text = (await Promise.all(files.map((file) => readFile(join(out, 'ledger', file), 'utf8')))).join('');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LedgerEntry);
}

function billed(records: MockRecord[]): MockRecord[] {
  return records.filter((record) => record.status === 200 && record.usageMetadata);
}

describe('enqueue', () => {
  it('adds a file once: enqueueing it again adds 0 jobs', async () => {
    const { env, prefix } = await setup('enqueue-twice');
    const rows = Array.from({ length: 30 }, (_, i) => ({ id: `r${i}`, prompt: `row ${i}`, model: MODELS[i % 3]! }));
    const csv = await writeCsv('enqueue-twice', rows);
    const first = await runCli(['enqueue', csv, '--batch', 'twice', '--plain'], env);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('30 added, 0 already queued or done, 0 rejected');
    const second = await runCli(['enqueue', csv, '--batch', 'twice', '--plain'], env);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('0 added, 30 already queued or done');

    const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
    const queue = new Queue('images', { connection, prefix });
    const waiting = await queue.getWaiting(0, 100);
    expect(waiting).toHaveLength(30);
    // Job data holds the row, never the key or image bytes.
    expect(JSON.stringify(waiting.map((job) => job.data))).not.toContain(KEY);
    expect(waiting[0]!.id).toMatch(/^twice\/r\d+$/);
    await queue.close();
    connection.disconnect();

    const status = await runCli(['status', '--format', 'json'], env);
    const json = JSON.parse(status.stdout) as { batches: { batch: string; rows: number; waiting: number }[] };
    expect(json.batches).toEqual([expect.objectContaining({ batch: 'twice', rows: 30, waiting: 30 })]);
  });

  it('names the line and column of bad rows, and --strict adds nothing', async () => {
    const { env } = await setup('enqueue-bad');
    const csv = join(dir, 'bad.csv');
    await writeFile(csv, 'id,prompt,model,aspect_ratio\na,fine,gemini-3-pro-image-preview,1:1\nb,,gemini-3-pro-image-preview,1:1\nc,wide,gemini-3-pro-image-preview,5:7\n');
    const strict = await runCli(['enqueue', csv, '--batch', 'bad', '--strict'], env);
    expect(strict.code).toBe(2);
    expect(strict.stderr).toContain('bad.csv:3: prompt:');
    expect(strict.stderr).toContain('bad.csv:4: aspect_ratio:');
    const status = await runCli(['status', '--format', 'json'], env);
    expect((JSON.parse(status.stdout) as { batches: unknown[] }).batches).toEqual([]);
    const lenient = await runCli(['enqueue', csv, '--batch', 'bad'], env);
    expect(lenient.code).toBe(1);
    expect(lenient.stdout).toContain('1 added, 0 already queued or done, 2 rejected');
  });

  it('fails fast with a clear message when Redis is not there', async () => {
    const port = await freePort();
    const csv = await writeCsv('no-redis', [{ id: 'a', prompt: 'x', model: MODELS[0]! }]);
    const started = Date.now();
    const result = await runCli(['enqueue', csv, '--batch', 'x'], { REDIS_URL: `redis://:secretpw@127.0.0.1:${port}` });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`cannot reach Redis at redis://:***@127.0.0.1:${port}`);
    expect(result.stderr).not.toContain('secretpw');
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});

describe('run with REDIS_URL', () => {
  it('enqueues, works the queue in-process until drained, and prints the summary and the report', async () => {
    const { env, out } = await setup('run-redis', ['--latency-ms', '20']);
    const rows = Array.from({ length: 12 }, (_, i) => ({ id: `x${i}`, prompt: `run row ${i}${i === 3 ? ' [mock:blocked]' : ''}`, model: MODELS[i % 3]! }));
    const csv = await writeCsv('run-redis', rows);
    const result = await runCli(['run', csv, '--batch', 'viaqueue', '--plain'], env);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stdout).toContain('batch viaqueue: 11 done, 1 failed');
    expect(result.stdout).toMatch(/x3 \(line 5\): prompt blocked \(PROHIBITED_CONTENT\)/);
    expect(result.stdout).toMatch(/TOTAL\s+12\s+11\s+1/);
    expect(await sidecars(out, 'viaqueue')).toHaveLength(12);
    const again = await runCli(['run', csv, '--batch', 'viaqueue', '--plain'], env);
    expect(again.code).toBe(1);
    expect(again.stdout).toContain('batch viaqueue: 0 done, 0 failed, 11 already done');
    expect(again.stdout).toMatch(/failed in an earlier run, not tried again[^\n]*\n\s+x3 \(line 5\): prompt blocked/);
  });

  it('--retry-failed queues the failed rows again', async () => {
    const { env, out } = await setup('retry-failed', ['--latency-ms', '10']);
    const rows = [
      { id: 'ok', prompt: 'fine row', model: MODELS[2]! },
      { id: 'flaky', prompt: 'flaky row [mock:503x3]', model: MODELS[2]! },
    ];
    const csv = await writeCsv('retry-failed', rows);
    const first = await runCli(['run', csv, '--batch', 'flaky', '--attempts', '2', '--plain'], { ...env, TOKENHOT_QUEUE_PREFIX: env.TOKENHOT_QUEUE_PREFIX });
    expect(first.code).toBe(1);
    expect(first.stdout).toMatch(/flaky \(line 3\): the endpoint failed \(HTTP 503/);
    const second = await runCli(['run', csv, '--batch', 'flaky', '--retry-failed', '--plain'], env);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(await sidecars(out, 'flaky')).toHaveLength(2);
  });

  it('enqueueing again queues a row that was refused without a bill, not one whose billed answer had no image', async () => {
    const { env, out } = await setup('unbilled', ['--latency-ms', '10']);
    const csv = await writeCsv('unbilled', [
      { id: 'refused', prompt: 'refused once, then fine [mock:404x1]', model: MODELS[2]! },
      { id: 'blocked', prompt: 'blocked for good [mock:blocked]', model: MODELS[2]! },
    ]);
    const first = await runCli(['run', csv, '--batch', 'unbilled', '--plain'], env);
    expect(first.code).toBe(1);
    expect(first.stdout).toContain('batch unbilled: 0 done, 2 failed');
    const second = await runCli(['run', csv, '--batch', 'unbilled', '--plain'], env);
    expect(second.code).toBe(1);
    expect(second.stdout).toContain('batch unbilled: 1 done, 0 failed');
    expect(second.stdout).toMatch(/failed in an earlier run, not tried again[^\n]*\n\s+blocked \(line 3\): prompt blocked/);
    expect(await sidecars(out, 'unbilled')).toHaveLength(2);
  });

  it('work --until-drained says what it did and exits 1 when a row it took failed for good', async () => {
    const { env } = await setup('drained-failed', ['--latency-ms', '10']);
    const csv = await writeCsv('drained-failed', [
      { id: 'ok', prompt: 'a fine row', model: MODELS[2]! },
      { id: 'blocked', prompt: 'a blocked row [mock:blocked]', model: MODELS[2]! },
    ]);
    expect((await runCli(['enqueue', csv, '--batch', 'drained'], env)).code).toBe(0);
    const drained = await runCli(['work', '--until-drained', '--no-catalog'], env);
    expect(drained.code, drained.stderr).toBe(1);
    expect(drained.stdout).toMatch(/work: queue drained; this worker did 2 row\(s\): 1 done, 1 failed for good/);
  });
});

describe('workers', () => {
  it('500 rows, two workers, one killed with SIGKILL half-way: every image once, byte-identical, report equal to the bill', async () => {
    const { env, mock, out } = await setup('two-workers', ['--rps', '60', '--burst', '10', '--latency-ms', '40', '--latency-jitter-ms', '80']);
    const rows = Array.from({ length: 500 }, (_, i) => ({
      id: `r${String(i).padStart(3, '0')}`,
      // The quota answers 429s when the workers outpace it; one late row gets one whatever the
      // pace (late, so the pace it teaches is near the full rate).
      prompt: `catalog item ${i}${i % 50 === 7 ? ' [mock:two-images]' : ''}${i === 480 ? ' [mock:429x1][mock:retry=0.2s]' : ''}`,
      model: MODELS[i % 3]!,
    }));
    const csv = await writeCsv('two-workers', rows);
    expect((await runCli(['enqueue', csv, '--batch', 'big'], env)).code).toBe(0);

    const a = worker(env, ['--concurrency', '8']);
    const b = worker(env, ['--concurrency', '8']);
    await waitFor('200 rows done', async () => (await sidecars(out, 'big')).length >= 200);
    // Kill A while no answer is on the wire: the mock holds answers back, and A is killed only
    // once every answer sent before is in the ledger (so the comparison below is exact).
    await fetch(`${mock.url}/__mock/hold`, { method: 'POST' });
    await waitFor('answers sent before the hold to be written', async () => (await ledger(out)).length === billed(await mock.requests()).length);
    a.child.kill('SIGKILL');
    await a.done;
    // Let the mock see A's connections close, so it does not send (and bill) answers to a dead
    // process: those it logs as 499, unbilled.
    await sleep(1000);
    await fetch(`${mock.url}/__mock/release`, { method: 'POST' });

    const resultB = await b.done;
    expect(resultB.code, resultB.stderr).toBe(0);
    expect(resultB.stdout).toMatch(/work: queue drained; this worker did \d+ row\(s\): \d+ done, 0 failed for good; spend \$\d+\.\d{4}/);

    const records = await mock.requests();
    expect(records.some((record) => record.status === 429)).toBe(true);
    // A row done twice (a job recovered while its first worker still ran) keeps one of its
    // answers; either way the files are exactly what the mock sent.
    const sentSets = new Map<string, string[][]>();
    for (const record of billed(records)) sentSets.set(record.prompt, [...(sentSets.get(record.prompt) ?? []), record.images.map((image) => image.sha256)]);

    const files = await readdir(join(out, 'big'));
    expect(files.filter((file) => file.startsWith('.') || file.endsWith('.tmp'))).toEqual([]);
    let imageCount = 0;
    for (const row of rows) {
      const ext = row.model.includes('pro') ? 'jpg' : 'png';
      const sets = sentSets.get(row.prompt);
      expect(sets, row.id).toBeDefined();
      const count = sets![0]!.length;
      const onDisk: string[] = [];
      for (let index = 0; index < count; index++) {
        const file = index === 0 ? `${row.id}.${ext}` : `${row.id}-${index + 1}.${ext}`;
        onDisk.push(sha256(await readFile(join(out, 'big', file))));
      }
      expect(sets!.map((set) => set.join()), row.id).toContain(onDisk.join());
      imageCount += count;
    }
    expect(files.filter((file) => !file.endsWith('.json'))).toHaveLength(imageCount);
    expect(files.filter((file) => file.endsWith('.json'))).toHaveLength(500);

    // The ledger holds every billed answer, exactly once each.
    const entries = await ledger(out);
    expect(entries).toHaveLength(billed(records).length);
    const report = JSON.parse((await runCli(['report', '--format', 'json'], env)).stdout) as { totals: Record<string, number> };
    const expected = { requests: 0, images: 0, promptTokens: 0, imageOutputTokens: 0, textOutputTokens: 0, thoughtsTokens: 0 };
    for (const record of billed(records)) {
      const counts = geminiTokenCounts(record.usageMetadata as UsageMetadata);
      expected.requests += 1;
      expected.images += record.images.length;
      expected.promptTokens += counts.promptTokens;
      expected.imageOutputTokens += counts.imageOutputTokens;
      expected.textOutputTokens += counts.textOutputTokens;
      expected.thoughtsTokens += counts.thoughtsTokens;
    }
    expect(report.totals).toMatchObject(expected);
  });

  it('a worker killed while an answer streams in leaves no partial image; another worker finishes the row', async () => {
    const { env, out } = await setup('mid-stream', ['--latency-ms', '20']);
    const rows = [{ id: 'slow', prompt: 'a slow download [mock:trickle=4000]', model: MODELS[1]! }];
    const csv = await writeCsv('mid-stream', rows);
    await runCli(['enqueue', csv, '--batch', 'stream'], env);
    const a = worker(env);
    const partial = join(out, 'stream', '.partial');
    await waitFor('an image being received', async () => (await readdir(partial).catch(() => [] as string[])).length > 0);
    a.child.kill('SIGKILL');
    await a.done;
    expect((await readdir(join(out, 'stream'))).filter((file) => !file.startsWith('.'))).toEqual([]);

    const b = worker(env);
    const result = await b.done;
    expect(result.code, result.stderr).toBe(0);
    const files = await readdir(join(out, 'stream'));
    expect(files.sort()).toEqual(['slow.json', 'slow.png']);
    expect(existsSync(partial)).toBe(false);
  });

  it('after a 429 with retryDelay N s, no worker of either process sends a request for N s, and no job loses an attempt', async () => {
    const { env, mock, out } = await setup('rate-limit', ['--latency-ms', '30', '--latency-jitter-ms', '40']);
    const rows = Array.from({ length: 60 }, (_, i) => ({
      id: `q${i}`,
      prompt: `quota row ${i}${i === 12 ? ' [mock:429x1] [mock:retry=2.5s]' : ''}`,
      model: MODELS[i % 3]!,
    }));
    const csv = await writeCsv('rate-limit', rows);
    await runCli(['enqueue', csv, '--batch', 'quota'], env);
    const a = worker(env, ['--concurrency', '3']);
    const b = worker(env, ['--concurrency', '3']);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);

    const records = await mock.requests();
    const limited = records.filter((record) => record.status === 429);
    expect(limited).toHaveLength(1);
    const answeredAt = limited[0]!.answeredAt;
    // A request already on its way when the 429 was answered cannot be called back; allow the
    // time it takes a worker to hear of the pause (a Redis round trip).
    const during = records.filter((record) => record.receivedAt > answeredAt + 150 && record.receivedAt < answeredAt + 2500);
    expect(during).toEqual([]);
    expect(records.some((record) => record.receivedAt >= answeredAt + 2500)).toBe(true);

    const entries = await ledger(out);
    expect(entries).toHaveLength(60);
    expect(entries.every((entry) => entry.attempt === 1)).toBe(true);
    expect(await sidecars(out, 'quota')).toHaveLength(60);
  });

  it('a wrong key pauses the queue: jobs stay waiting, none failed, the exit names the cause; resume after the fix', async () => {
    const { env, prefix, out } = await setup('wrong-key', ['--latency-ms', '10']);
    const rows = Array.from({ length: 12 }, (_, i) => ({ id: `k${i}`, prompt: `key row ${i}`, model: MODELS[0]! }));
    const csv = await writeCsv('wrong-key', rows);
    await runCli(['enqueue', csv, '--batch', 'keyed'], env);
    const wrongKey = 'sk-not-the-right-one-123';
    const bad = await worker({ ...env, TOKENHOT_API_KEY: wrongKey }, ['--concurrency', '4']).done;
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('the API key was refused');
    expect(bad.stderr).not.toContain(wrongKey);

    const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
    const queue = new Queue('images', { connection, prefix });
    expect(await queue.isPaused()).toBe(true);
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
    expect(counts).toMatchObject({ waiting: 12, active: 0, delayed: 0, failed: 0, completed: 0 });
    await queue.close();
    connection.disconnect();

    const status = await runCli(['status'], env);
    expect(status.stdout).toContain('queue PAUSED: the API key was refused');

    // A run that would have to drain a paused queue says so at once instead of waiting forever.
    // It queues nothing: a file run into a paused queue would sit there and run none of its rows.
    const blocked = await runCli(['run', csv, '--batch', 'keyed-again', '--plain'], env);
    expect(blocked.code).toBe(2);
    expect(blocked.stderr).toContain('the images queue is paused (the API key was refused');
    const afterConnection = new Redis(redisUrl, { maxRetriesPerRequest: null });
    const after = new Queue('images', { connection: afterConnection, prefix });
    expect((await after.getJobCounts('waiting')).waiting).toBe(12);
    await after.close();
    afterConnection.disconnect();

    expect((await runCli(['resume'], env)).code).toBe(0);
    const good = await worker(env).done;
    expect(good.code, good.stderr).toBe(0);
    expect(await sidecars(out, 'keyed')).toHaveLength(12);
  });

  it('workers keep working across a Redis restart', async () => {
    const redis = new PrivateRedis(await freePort(), await mkdtemp(join(tmpdir(), 'thb-redis-')));
    await redis.start();
    try {
      const { out, env } = await setup('restart', ['--latency-ms', '120']);
      const local = { ...env, REDIS_URL: redis.url };
      const rows = Array.from({ length: 60 }, (_, i) => ({ id: `s${i}`, prompt: `restart row ${i}`, model: MODELS[2]! }));
      const csv = await writeCsv('restart', rows);
      await runCli(['enqueue', csv, '--batch', 'restart'], local);
      const w = worker(local, ['--concurrency', '4', '--lock-duration', '30000']);
      await waitFor('some rows done', async () => (await sidecars(out, 'restart')).length >= 10);
      await redis.stop();
      await sleep(1500);
      await redis.start();
      const result = await w.done;
      expect(result.code, result.stderr).toBe(0);
      expect(await sidecars(out, 'restart')).toHaveLength(60);
    } finally {
      await redis.stop();
    }
  });

  it('SIGTERM stops a worker whose Redis is gone: its calls finish into the ledger, then it exits, saying what it left', async () => {
    const redis = new PrivateRedis(await freePort(), await mkdtemp(join(tmpdir(), 'thb-redis-')));
    await redis.start();
    try {
      const { out, env, mock } = await setup('redis-gone', ['--latency-ms', '1500']);
      const local = { ...env, REDIS_URL: redis.url };
      const rows = Array.from({ length: 8 }, (_, i) => ({ id: `g${i}`, prompt: `gone row ${i}`, model: MODELS[2]! }));
      await runCli(['enqueue', await writeCsv('redis-gone', rows), '--batch', 'gone'], local);
      const w = startCli(['work', '--concurrency', '4', '--plain'], local);
      processes.push(w);
      await waitFor('calls in flight', async () => (await mock.requests()).length === 4);
      await redis.stop();
      w.child.kill('SIGTERM');
      // Before the fix the worker waited on Redis for ever (still running 150 s after SIGTERM).
      const result = await Promise.race([w.done, sleep(30_000).then(() => undefined)]);
      expect(result, 'the worker did not stop').toBeDefined();
      expect(result!.stderr).toMatch(/could not close in \d+ s \(is Redis reachable\?\): leaving; its active jobs come back as stalled/);
      expect(result!.stdout).toContain('work: stopped by SIGTERM');
      // Every answer billed, before or after Redis went, is in the ledger all the same.
      const ledger = (await readdir(join(out, 'ledger'))).filter((file) => file.endsWith('.jsonl'));
      const lines = (await Promise.all(ledger.map((file) => readFile(join(out, 'ledger', file), 'utf8')))).join('').trim().split('\n');
      const billed = (await mock.requests()).filter((record) => record.status === 200);
      expect(billed.length).toBeGreaterThanOrEqual(4);
      expect(lines).toHaveLength(billed.length);
    } finally {
      await redis.stop();
    }
  });

  it('SIGTERM lets calls in flight finish and takes no new job', async () => {
    const { env, out, prefix } = await setup('sigterm', ['--latency-ms', '800']);
    const rows = Array.from({ length: 20 }, (_, i) => ({ id: `t${i}`, prompt: `term row ${i}`, model: MODELS[1]! }));
    const csv = await writeCsv('sigterm', rows);
    await runCli(['enqueue', csv, '--batch', 'term'], env);
    const w = startCli(['work', '--concurrency', '4'], env);
    processes.push(w);
    await waitFor('calls in flight', async () => w.stderr().includes('worker started'));
    await sleep(300);
    w.child.kill('SIGTERM');
    const result = await w.done;
    expect(result.code).toBe(0);
    const done = (await sidecars(out, 'term')).length;
    expect(done).toBe(4);
    expect(result.stdout).toContain('work: stopped by SIGTERM; this worker did 4 row(s): 4 done, 0 failed for good');
    const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
    const queue = new Queue('images', { connection, prefix });
    expect(await queue.getJobCounts('waiting', 'active')).toMatchObject({ waiting: 16, active: 0 });
    await queue.close();
    connection.disconnect();
  });
});
