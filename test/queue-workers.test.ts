/**
 * Distributed mode against a real Redis and a `mock-server` process: `enqueue`, `run` with
 * REDIS_URL and `work` processes as a user runs them, killed the way machines fail.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { geminiTokenCounts } from '../src/providers/gemini/usage.js';
import type { UsageMetadata } from '../src/core/types.js';
import { runInProcess } from './helpers/cli-in-process.js';

import { billed, KEY, ledger, MODELS, redisUrl, setup, sha256, sidecars, sleep, testFile, useQueueHarness, waitFor, worker, writeCsv } from './helpers/queue-harness.js';
import { freePort } from './helpers/redis.js';
import { isImageFile, isSidecar } from './helpers/output-files.js';

useQueueHarness();

describe('enqueue', () => {
  it('adds a file once: enqueueing it again adds 0 jobs', async () => {
    const { env, prefix } = await setup('enqueue-twice');
    const rows = Array.from({ length: 30 }, (_, i) => ({ id: `r${i}`, prompt: `row ${i}`, model: MODELS[i % 3]! }));
    const csv = await writeCsv('enqueue-twice', rows);
    const first = await runInProcess(['enqueue', csv, '--batch', 'twice', '--plain'], env);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('30 added, 0 already queued or done, 0 rejected');
    const second = await runInProcess(['enqueue', csv, '--batch', 'twice', '--plain'], env);
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

    const status = await runInProcess(['status', '--format', 'json'], env);
    const json = JSON.parse(status.stdout) as { batches: { batch: string; rows: number; waiting: number }[] };
    expect(json.batches).toEqual([expect.objectContaining({ batch: 'twice', rows: 30, waiting: 30 })]);
  });

  it('names the line and column of bad rows, and --strict adds nothing', async () => {
    const { env } = await setup('enqueue-bad');
    const csv = testFile('bad.csv');
    await writeFile(csv, 'id,prompt,model,aspect_ratio\na,fine,gemini-3-pro-image-preview,1:1\nb,,gemini-3-pro-image-preview,1:1\nc,wide,gemini-3-pro-image-preview,5:7\n');
    const strict = await runInProcess(['enqueue', csv, '--batch', 'bad', '--strict'], env);
    expect(strict.code).toBe(2);
    expect(strict.stderr).toContain('bad.csv:3: prompt:');
    expect(strict.stderr).toContain('bad.csv:4: aspect_ratio:');
    const status = await runInProcess(['status', '--format', 'json'], env);
    expect((JSON.parse(status.stdout) as { batches: unknown[] }).batches).toEqual([]);
    const lenient = await runInProcess(['enqueue', csv, '--batch', 'bad'], env);
    expect(lenient.code).toBe(1);
    expect(lenient.stdout).toContain('1 added, 0 already queued or done, 2 rejected');
  });

  it('fails fast with a clear message when Redis is not there', async () => {
    const port = await freePort();
    const csv = await writeCsv('no-redis', [{ id: 'a', prompt: 'x', model: MODELS[0]! }]);
    const started = Date.now();
    const result = await runInProcess(['enqueue', csv, '--batch', 'x'], { REDIS_URL: `redis://:secretpw@127.0.0.1:${port}` });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`cannot reach Redis at redis://:***@127.0.0.1:${port}`);
    expect(result.stderr).not.toContain('secretpw');
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});

describe('run with REDIS_URL', () => {
  it('enqueues, works the queue in-process until drained, and prints the summary and the report', async () => {
    const { env, out } = await setup('run-redis');
    const rows = Array.from({ length: 12 }, (_, i) => ({ id: `x${i}`, prompt: `run row ${i}${i === 3 ? ' [mock:blocked]' : ''}`, model: MODELS[i % 3]! }));
    const csv = await writeCsv('run-redis', rows);
    const result = await runInProcess(['run', csv, '--batch', 'viaqueue', '--plain'], env);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stdout).toContain('batch viaqueue: 11 done, 1 failed');
    expect(result.stdout).toMatch(/x3 \(line 5\): prompt blocked \(PROHIBITED_CONTENT\)/);
    expect(result.stdout).toMatch(/TOTAL\s+\$[\d.,]+\s+\$[\d.,]+\s+12\s+11\s+1\s/);
    expect(await sidecars(out, 'viaqueue')).toHaveLength(12);
    const again = await runInProcess(['run', csv, '--batch', 'viaqueue', '--plain'], env);
    expect(again.code).toBe(1);
    expect(again.stdout).toContain('batch viaqueue: 0 done, 0 failed, 11 already done');
    expect(again.stdout).toMatch(/failed in an earlier run, not tried again[^\n]*\n\s+x3 \(line 5\): prompt blocked/);
  });

  it('--retry-failed queues the failed rows again', async () => {
    const { env, out } = await setup('retry-failed');
    const rows = [
      { id: 'ok', prompt: 'fine row', model: MODELS[2]! },
      { id: 'flaky', prompt: 'flaky row [mock:503x1]', model: MODELS[2]! },
    ];
    const csv = await writeCsv('retry-failed', rows);
    // One attempt: the row fails at once (the backoffs between attempts are tested in process).
    const first = await runInProcess(['run', csv, '--batch', 'flaky', '--attempts', '1', '--plain'], env);
    expect(first.code).toBe(1);
    expect(first.stdout).toMatch(/flaky \(line 3\): the endpoint failed \(HTTP 503/);
    const second = await runInProcess(['run', csv, '--batch', 'flaky', '--retry-failed', '--plain'], env);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(await sidecars(out, 'flaky')).toHaveLength(2);
  });

  it('enqueueing again queues a row that was refused without a bill, not one whose billed answer had no image', async () => {
    const { env, out } = await setup('unbilled');
    const csv = await writeCsv('unbilled', [
      { id: 'refused', prompt: 'refused once, then fine [mock:404x1]', model: MODELS[2]! },
      { id: 'blocked', prompt: 'blocked for good [mock:blocked]', model: MODELS[2]! },
    ]);
    const first = await runInProcess(['run', csv, '--batch', 'unbilled', '--plain'], env);
    expect(first.code).toBe(1);
    expect(first.stdout).toContain('batch unbilled: 0 done, 2 failed');
    const second = await runInProcess(['run', csv, '--batch', 'unbilled', '--plain'], env);
    expect(second.code).toBe(1);
    expect(second.stdout).toContain('batch unbilled: 1 done, 0 failed');
    expect(second.stdout).toMatch(/failed in an earlier run, not tried again[^\n]*\n\s+blocked \(line 3\): prompt blocked/);
    expect(await sidecars(out, 'unbilled')).toHaveLength(2);
  });

  it('work --until-drained says what it did and exits 1 when a row it took failed for good', async () => {
    const { env } = await setup('drained-failed');
    const csv = await writeCsv('drained-failed', [
      { id: 'ok', prompt: 'a fine row', model: MODELS[2]! },
      { id: 'blocked', prompt: 'a blocked row [mock:blocked]', model: MODELS[2]! },
    ]);
    expect((await runInProcess(['enqueue', csv, '--batch', 'drained'], env)).code).toBe(0);
    const drained = await runInProcess(['work', '--until-drained', '--no-catalog'], env);
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
    expect((await runInProcess(['enqueue', csv, '--batch', 'big'], env)).code).toBe(0);

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
    expect(files.filter(isImageFile)).toHaveLength(imageCount);
    expect(files.filter(isSidecar)).toHaveLength(500);

    // The ledger holds every billed answer, exactly once each.
    const entries = await ledger(out);
    expect(entries).toHaveLength(billed(records).length);
    const report = JSON.parse((await runInProcess(['report', '--format', 'json'], env)).stdout) as { totals: Record<string, number> };
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
    const { env, out } = await setup('mid-stream');
    const rows = [{ id: 'slow', prompt: 'a slow download [mock:trickle=1500]', model: MODELS[1]! }];
    const csv = await writeCsv('mid-stream', rows);
    await runInProcess(['enqueue', csv, '--batch', 'stream'], env);
    // Short locks: the killed worker's job comes back as stalled within about 2.5 s.
    const fastLocks = ['--lock-duration', '2000', '--stalled-interval', '500'];
    const a = worker(env, fastLocks);
    const partial = join(out, 'stream', '.partial');
    await waitFor('an image being received', async () => (await readdir(partial).catch(() => [] as string[])).length > 0);
    a.child.kill('SIGKILL');
    await a.done;
    expect((await readdir(join(out, 'stream'))).filter((file) => !file.startsWith('.'))).toEqual([]);

    const b = worker(env, fastLocks);
    const result = await b.done;
    expect(result.code, result.stderr).toBe(0);
    const files = await readdir(join(out, 'stream'));
    expect(files.sort()).toEqual(['manifest.csv', 'manifest.json', 'slow.json', 'slow.png']);
    expect(existsSync(partial)).toBe(false);
  });

  it('after a 429 with retryDelay N s, no worker of either process sends a request for N s, and no job loses an attempt', async () => {
    const { env, mock, out } = await setup('rate-limit');
    const rows = Array.from({ length: 30 }, (_, i) => ({
      id: `q${i}`,
      // Answers after 30 to 69 ms, spread as a jitter would.
      prompt: `quota row ${i} [mock:latency=${30 + ((i * 17) % 40)}]${i === 12 ? ' [mock:429x1] [mock:retry=1.5s]' : ''}`,
      model: MODELS[i % 3]!,
    }));
    const csv = await writeCsv('rate-limit', rows);
    await runInProcess(['enqueue', csv, '--batch', 'quota'], env);
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
    const during = records.filter((record) => record.receivedAt > answeredAt + 150 && record.receivedAt < answeredAt + 1500);
    expect(during).toEqual([]);
    expect(records.some((record) => record.receivedAt >= answeredAt + 1500)).toBe(true);

    const entries = await ledger(out);
    expect(entries).toHaveLength(30);
    expect(entries.every((entry) => entry.attempt === 1)).toBe(true);
    expect(await sidecars(out, 'quota')).toHaveLength(30);
  });
});
