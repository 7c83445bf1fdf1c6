/**
 * Catalog firings and budgets: rows an earlier firing parked over budget are taken over by the
 * next firing (under its budget) instead of waiting for ever in the old batch; an `every:`
 * schedule first fires when `schedule list` says it will; `list` shows times in the schedule's
 * time zone and the rows parked.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CatalogState, type CatalogRun } from '../src/catalog/state.js';
import { BatchState } from '../src/queue/batch-state.js';
import { appendReview } from '../src/output/reviews.js';
import { startCli, startMockProcess, type CliProcess, type MockProcess } from './helpers/processes.js';
import { removePrefix, uniquePrefix } from './helpers/redis.js';
import { runInProcess } from './helpers/cli-in-process.js';

const redisUrl = inject('redisUrl');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ROWS = 5;

describe('catalog firings and budgets', () => {
  let dir: string;
  let mock: MockProcess;
  let client: Redis;
  let worker: CliProcess | undefined;
  const prefix = uniquePrefix('firings');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'thb-firings-'));
    mock = await startMockProcess(['--api-key', 'k', '--latency-ms', '10']);
    client = new Redis(redisUrl, { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    if (worker && worker.child.exitCode === null) worker.child.kill('SIGKILL');
    await mock.stop();
    await removePrefix(redisUrl, prefix);
    client.disconnect();
    await rm(dir, { recursive: true, force: true });
  });

  async function runs(): Promise<CatalogRun[]> {
    return (await new CatalogState(client, prefix).runs('nightly', 100)).reverse();
  }
  async function until<T>(what: string, read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await read();
      if (ok(value)) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
      await sleep(100);
    }
  }
  /** Fires the job by hand and waits until the firing's rows are done or parked. */
  async function fire(env: Record<string, string>, firing: number): Promise<{ run: CatalogRun; done: number; parked: number }> {
    if (firing > 1) await sleep(1_100); // batch names carry the time to the second
    const fired = await runInProcess(['schedule', 'run', 'nightly'], env);
    expect(fired.code, fired.stderr).toBe(0);
    const all = await until('the firing', runs, (list) => list.length >= firing);
    const run = all[firing - 1]!;
    const batches = new BatchState(client, prefix);
    const counts = await until('its rows to settle', () => batches.counts(run.batch), (c) => c.done + c.overBudget === c.rows && c.rows === run.enqueued);
    return { run, done: counts.done, parked: counts.overBudget };
  }

  it('parked rows move to the next firing and are made under its budget; list shows them and local times', async () => {
    const folder = join(dir, 'jobs');
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, 'rows.csv'), ['id,prompt', ...Array.from({ length: ROWS }, (_, i) => `p${i},"product ${i} on white"`)].join('\n'));
    // About $0.039 an image: a budget of $0.10 makes two per firing.
    await writeFile(
      join(folder, 'nightly.yaml'),
      'name: nightly\ncsv: rows.csv\nschedule: { every: 1h, tz: America/New_York }\nbudgetUsd: 0.10\nbatch: "{name}/{date}-{time}"\ndefaults: { model: gemini-2.5-flash-image }\n',
    );
    const env = { REDIS_URL: redisUrl, TOKENHOT_QUEUE_PREFIX: prefix, TOKENHOT_API_KEY: 'k', TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: join(dir, 'out') };

    const syncedAt = Date.now();
    expect((await runInProcess(['schedule', 'sync', folder], env)).code).toBe(0);
    worker = startCli(['work', '--concurrency', '4', '--plain'], env);
    await until('the worker', async () => worker!.stderr() + worker!.stdout(), (log) => log.includes('worker started'));
    // An `every:` schedule first fires one interval after sync, as list says: not at once.
    await sleep(1_500);
    expect(await runs()).toEqual([]);
    const listed = JSON.parse((await runInProcess(['schedule', 'list', '--format', 'json'], env)).stdout) as { next: string; tz: string }[];
    expect(listed[0]!.tz).toBe('America/New_York');
    expect(Date.parse(listed[0]!.next) - syncedAt).toBeGreaterThan(3_590_000);
    expect(Date.parse(listed[0]!.next) - syncedAt).toBeLessThan(3_610_000);

    const first = await fire(env, 1);
    expect(first.run).toMatchObject({ enqueued: ROWS, takenOver: 0 });
    expect([first.done, first.parked]).toEqual([2, 3]);
    const table = (await runInProcess(['schedule', 'list'], env)).stdout;
    expect(table).toMatch(/next \d{4}-\d\d-\d\d \d\d:\d\d:\d\d America\/New_York/);
    expect(table).toMatch(/last run \d{4}-\d\d-\d\d \d\d:\d\d:\d\d America\/New_York: ok, 5 enqueued/);
    expect(table).toContain('3 row(s) parked over budget; the next firing takes them over under its budget');

    // The next firing takes the three over: the old batch keeps none parked, none of its rows waits.
    const second = await fire(env, 2);
    expect(second.run).toMatchObject({ enqueued: 3, takenOver: 3, unchanged: 2, stillQueued: 0 });
    expect([second.done, second.parked]).toEqual([2, 1]);
    const old = await new BatchState(client, prefix).counts(first.run.batch);
    expect(old).toMatchObject({ rows: 2, done: 2, overBudget: 0 });

    const third = await fire(env, 3);
    expect(third.run).toMatchObject({ enqueued: 1, takenOver: 1, unchanged: 4 });
    expect([third.done, third.parked]).toEqual([1, 0]);
    expect((await runInProcess(['schedule', 'list'], env)).stdout).not.toContain('parked over budget');
    // Every row was made once, and asked of the mock once.
    const prompts = (await mock.requests()).map((record) => record.prompt).sort();
    expect(prompts).toEqual(Array.from({ length: ROWS }, (_, i) => `product ${i} on white`).sort());
  });

  it('regenerate: guided: the next firing makes an unchanged row rejected in review again, with the note, once', async () => {
    const folder = join(dir, 'review-jobs');
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, 'rows.csv'), 'id,prompt\nmug,"a mug on white"\ncup,"a cup on white"\n');
    await writeFile(join(folder, 'reviewed.yaml'), 'name: reviewed\ncsv: rows.csv\nschedule: { every: 1h }\nregenerate: guided\nbatch: "{name}/{date}-{time}"\ndefaults: { model: gemini-2.5-flash-image }\n');
    const out = join(dir, 'out');
    const env = { REDIS_URL: redisUrl, TOKENHOT_QUEUE_PREFIX: prefix, TOKENHOT_API_KEY: 'k', TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: out };
    expect((await runInProcess(['schedule', 'sync', folder], env)).code).toBe(0);
    const catalogRuns = async (): Promise<CatalogRun[]> => (await new CatalogState(client, prefix).runs('reviewed', 100)).reverse();
    const fireAndSettle = async (n: number): Promise<CatalogRun> => {
      if (n > 1) await sleep(1_100);
      expect((await runInProcess(['schedule', 'run', 'reviewed'], env)).code).toBe(0);
      const run = (await until('the firing', catalogRuns, (list) => list.length >= n))[n - 1]!;
      await until('its rows', () => new BatchState(client, prefix).counts(run.batch), (c) => c.done + c.failed === c.rows);
      return run;
    };
    const first = await fireAndSettle(1);
    expect(first.enqueued).toBe(2);
    await appendReview(out, first.batch, { rowId: 'mug', decision: 'rejected', note: 'the handle is on the wrong side', who: 'ana' });
    await appendReview(out, first.batch, { rowId: 'cup', decision: 'approved', who: 'ana' });

    const second = await fireAndSettle(2);
    expect(second).toMatchObject({ enqueued: 1, regenerated: 1, unchanged: 1 });
    expect((await mock.requests()).map((r) => r.prompt).filter((p) => p.startsWith('a mug'))).toEqual(['a mug on white', 'a mug on white\n\nAvoid: the handle is on the wrong side']);
    // Made again once: the next firing leaves it (its new image is unreviewed).
    const third = await fireAndSettle(3);
    expect(third).toMatchObject({ enqueued: 0, unchanged: 2 });
  });
});
