/**
 * Workers when things around them fail: a wrong key, a Redis that restarts or goes away, a
 * SIGTERM. Real processes against a real Redis and a `mock-server` process.
 */
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { runInProcess } from './helpers/cli-in-process.js';
import { startCli } from './helpers/processes.js';
import { MODELS, processes, redisUrl, setup, sidecars, sleep, useQueueHarness, waitFor, worker, writeCsv } from './helpers/queue-harness.js';
import { freePort, PrivateRedis } from './helpers/redis.js';

useQueueHarness();

describe('workers when things fail', () => {
  it('a wrong key pauses the queue: jobs stay waiting, none failed, the exit names the cause; resume after the fix', async () => {
    const { env, prefix, out } = await setup('wrong-key');
    const rows = Array.from({ length: 12 }, (_, i) => ({ id: `k${i}`, prompt: `key row ${i}`, model: MODELS[0]! }));
    const csv = await writeCsv('wrong-key', rows);
    await runInProcess(['enqueue', csv, '--batch', 'keyed'], env);
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

    const status = await runInProcess(['status'], env);
    expect(status.stdout).toContain('queue PAUSED: the API key was refused');

    // A run that would have to drain a paused queue says so at once instead of waiting forever.
    // It queues nothing: a file run into a paused queue would sit there and run none of its rows.
    const blocked = await runInProcess(['run', csv, '--batch', 'keyed-again', '--plain'], env);
    expect(blocked.code).toBe(2);
    expect(blocked.stderr).toContain('the images queue is paused (the API key was refused');
    const afterConnection = new Redis(redisUrl, { maxRetriesPerRequest: null });
    const after = new Queue('images', { connection: afterConnection, prefix });
    expect((await after.getJobCounts('waiting')).waiting).toBe(12);
    await after.close();
    afterConnection.disconnect();

    expect((await runInProcess(['resume'], env)).code).toBe(0);
    const good = await worker(env).done;
    expect(good.code, good.stderr).toBe(0);
    expect(await sidecars(out, 'keyed')).toHaveLength(12);
  });

  it('workers keep working across a Redis restart', async () => {
    const redis = new PrivateRedis(await freePort(), await mkdtemp(join(tmpdir(), 'thb-redis-')));
    await redis.start();
    try {
      const { out, env } = await setup('restart');
      const local = { ...env, REDIS_URL: redis.url };
      const rows = Array.from({ length: 30 }, (_, i) => ({ id: `s${i}`, prompt: `restart row ${i} [mock:latency=120]`, model: MODELS[2]! }));
      const csv = await writeCsv('restart', rows);
      await runInProcess(['enqueue', csv, '--batch', 'restart'], local);
      const w = worker(local, ['--concurrency', '4', '--lock-duration', '30000']);
      await waitFor('some rows done', async () => (await sidecars(out, 'restart')).length >= 10);
      // Down long enough for every connection to break; how long does not matter.
      await redis.stop();
      await sleep(500);
      await redis.start();
      const result = await w.done;
      expect(result.code, result.stderr).toBe(0);
      expect(await sidecars(out, 'restart')).toHaveLength(30);
    } finally {
      await redis.stop();
    }
  });

  it('SIGTERM stops a worker whose Redis is gone: its calls finish into the ledger, then it exits, saying what it left', async () => {
    const redis = new PrivateRedis(await freePort(), await mkdtemp(join(tmpdir(), 'thb-redis-')));
    await redis.start();
    try {
      const { out, env, mock } = await setup('redis-gone');
      const local = { ...env, REDIS_URL: redis.url };
      const rows = Array.from({ length: 8 }, (_, i) => ({ id: `g${i}`, prompt: `gone row ${i} [mock:latency=1500]`, model: MODELS[2]! }));
      await runInProcess(['enqueue', await writeCsv('redis-gone', rows), '--batch', 'gone'], local);
      const w = startCli(['work', '--concurrency', '4', '--plain'], local);
      processes.push(w);
      await waitFor('calls in flight', async () => (await mock.requests()).length === 4);
      await redis.stop();
      w.child.kill('SIGTERM');
      // Before the fix the worker waited on Redis for ever (still running 150 s after SIGTERM).
      const result = await Promise.race([w.done, sleep(30_000).then(() => undefined)]);
      expect(result, 'the worker did not stop').toBeDefined();
      expect(result!.stderr).toMatch(/could not close in \d+ s \(Redis cannot be reached\): leaving; any job still active comes back as stalled/);
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

  it('SIGTERM while a job waits for its start slot puts the job back at once instead of leaving it active', async () => {
    const { env, out, prefix } = await setup('slot-wait');
    const rows = Array.from({ length: 6 }, (_, i) => ({ id: `w${i}`, prompt: `slot row ${i} [mock:latency=50]`, model: MODELS[2]! }));
    await runInProcess(['enqueue', await writeCsv('slot-wait', rows), '--batch', 'slots'], env);
    // At 2 calls a minute the second job waits 30 s for its slot.
    const w = startCli(['work', '--concurrency', '2', '--rpm', '2', '--plain'], env);
    processes.push(w);
    await waitFor('the first row done', async () => (await sidecars(out, 'slots')).length === 1);
    w.child.kill('SIGTERM');
    const result = await w.done;
    expect(result.code, result.stderr).toBe(0);
    // Back in the queue, not left active to come back as stalled (which counts toward failing it).
    const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
    const queue = new Queue('images', { connection, prefix });
    expect(await queue.getJobCounts('waiting', 'active', 'delayed')).toMatchObject({ waiting: 5, active: 0, delayed: 0 });
    await queue.close();
    connection.disconnect();
  });

  it('SIGTERM lets calls in flight finish and takes no new job', async () => {
    const { env, out, prefix, mock } = await setup('sigterm');
    const rows = Array.from({ length: 20 }, (_, i) => ({ id: `t${i}`, prompt: `term row ${i} [mock:latency=800]`, model: MODELS[1]! }));
    const csv = await writeCsv('sigterm', rows);
    await runInProcess(['enqueue', csv, '--batch', 'term'], env);
    const w = startCli(['work', '--concurrency', '4'], env);
    processes.push(w);
    await waitFor('4 calls in flight', async () => (await mock.requests()).length === 4);
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
