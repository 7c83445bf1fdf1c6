/**
 * Scheduled catalog jobs: definitions checked with the file and field named, schedulers that
 * follow the jobs folder, and firings that queue only what is new or changed.
 */
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { batchNameOf, loadDefinition, loadDefinitions } from '../src/catalog/definition.js';
import { CatalogState, type CatalogRun } from '../src/catalog/state.js';
import { runInProcess } from './helpers/cli-in-process.js';
import { startCli, startMockProcess, type CliProcess, type MockProcess } from './helpers/processes.js';
import { removePrefix, uniquePrefix } from './helpers/redis.js';

const redisUrl = inject('redisUrl');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(100);
  }
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'thb-schedule-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function definitionFile(folder: string, name: string, body: string): Promise<string> {
  await mkdir(folder, { recursive: true });
  const file = join(folder, name);
  await writeFile(file, body);
  return file;
}

describe('catalog definitions', () => {
  it('name the file and the field of a bad cron pattern, time zone, duration or placeholder', async () => {
    const folder = join(dir, 'bad');
    const cases: [string, string, RegExp][] = [
      ['cron.yaml', 'name: a\ncsv: x.csv\nschedule: { pattern: "61 * * * *" }\n', /cron\.yaml: schedule\.pattern: "61 \* \* \* \*" is not a cron pattern/],
      ['tz.yaml', 'name: b\ncsv: x.csv\nschedule: { pattern: "0 2 * * *", tz: Mars/Olympus }\n', /tz\.yaml: schedule\.tz: "Mars\/Olympus" is not a time zone/],
      ['every.json', JSON.stringify({ name: 'c', csv: 'x.csv', schedule: { every: 'soon' } }), /every\.json: schedule\.every: "soon" is not a duration/],
      ['both.yaml', 'name: d\ncsv: x.csv\nschedule: { every: 5s, pattern: "* * * * *" }\n', /both\.yaml: schedule: give either/],
      ['batch.yaml', 'name: e\ncsv: x.csv\nschedule: { every: 5s }\nbatch: "{name}/{week}"\n', /batch\.yaml: batch: unknown placeholder \{week\}/],
      ['mode.yaml', 'name: f\ncsv: x.csv\nschedule: { every: 5s }\nmode: sometimes\n', /mode\.yaml: mode: /],
      ['extra.yaml', 'name: g\ncsv: x.csv\nschedule: { every: 5s }\nbudget: 3\n', /extra\.yaml: : Unrecognized key/i],
      ['size.yaml', 'name: h\ncsv: x.csv\nschedule: { every: 5s }\ndefaults: { model: gemini-2.5-flash-image, imageSize: 2K }\n', /size\.yaml: defaults\.imageSize: "2K" is not an image size/],
    ];
    for (const [name, body, message] of cases) {
      const result = await loadDefinition(await definitionFile(folder, name, body));
      expect('reason' in result, name).toBe(true);
      if ('reason' in result) expect(`${result.file}: ${result.field}: ${result.reason}`).toMatch(message);
    }
  });

  it('resolve the CSV next to the definition and name batches in the schedule\'s time zone', async () => {
    const folder = join(dir, 'good');
    await definitionFile(folder, 'one.yaml', 'name: shoes\ncsv: data/shoes.csv\nschedule: { pattern: "0 2 * * *", tz: Asia/Tokyo }\nbatch: "{name}/{date}-{time}"\n');
    await definitionFile(folder, 'two.json', JSON.stringify({ name: 'shoes', csv: 'y.csv', schedule: { every: '1h' } }));
    const { definitions, problems } = await loadDefinitions(folder);
    expect(definitions).toHaveLength(1);
    expect(definitions[0]!.csv).toBe(join(folder, 'data/shoes.csv'));
    expect(problems[0]!.reason).toContain('"shoes" is already the name of');
    // 2026-11-24 20:30 UTC is 2026-11-25 05:30 in Tokyo.
    expect(batchNameOf(definitions[0]!, new Date('2026-11-24T20:30:00Z'))).toBe('shoes/2026-11-25-053000');
  });
});

describe('catalog schedules on a real Redis', () => {
  let mock: MockProcess;
  let prefix: string;
  let client: Redis;
  const processes: CliProcess[] = [];

  beforeAll(async () => {
    mock = await startMockProcess(['--api-key', 'k', '--latency-ms', '10']);
    client = new Redis(redisUrl, { maxRetriesPerRequest: null });
  });
  afterEach(async () => {
    for (const process of processes.splice(0)) if (process.child.exitCode === null) process.child.kill('SIGKILL');
    await removePrefix(redisUrl, prefix);
  });
  afterAll(async () => {
    await mock.stop();
    client.disconnect();
  });

  const envFor = (out: string) => ({ REDIS_URL: redisUrl, TOKENHOT_QUEUE_PREFIX: prefix, TOKENHOT_API_KEY: 'k', TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: out });

  async function runsOf(name: string): Promise<CatalogRun[]> {
    return (await new CatalogState(client, prefix).runs(name, 100)).reverse();
  }

  async function waitForRun(name: string, check: (runs: CatalogRun[]) => boolean, timeoutMs = 30_000): Promise<CatalogRun[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const runs = await runsOf(name);
      if (check(runs)) return runs;
      if (Date.now() > deadline) throw new Error(`timed out; runs so far: ${JSON.stringify(runs.map((run) => [run.status, run.enqueued, run.unchanged, run.stillQueued]))}`);
      await sleep(100);
    }
  }

  it('every few seconds: the first firing queues every row, the next none, and after one prompt is edited exactly that row', async () => {
    prefix = uniquePrefix('catalog');
    const folder = join(dir, 'incremental');
    const csv = join(folder, 'products.csv');
    const rows = (edited: boolean) =>
      ['id,prompt', ...Array.from({ length: 6 }, (_, i) => `p${i},"product ${i}${edited && i === 4 ? ' in blue' : ''}"`)].join('\n');
    await definitionFile(folder, 'products.yaml', 'name: products\ncsv: products.csv\nschedule: { every: 2s }\ndefaults: { model: gemini-2.5-flash-image }\nbatch: "{name}/{date}"\n');
    await writeFile(csv, rows(false));
    const out = join(dir, 'incremental-out');
    const env = envFor(out);

    const sync = await runInProcess(['schedule', 'sync', folder], env);
    expect(sync.code, sync.stderr).toBe(0);
    expect(sync.stdout).toContain('synced products');
    const worker = startCli(['work', '--concurrency', '4'], env);
    processes.push(worker);

    let runs = await waitForRun('products', (all) => all.filter((run) => run.status === 'ok').length >= 2);
    const ok = runs.filter((run) => run.status === 'ok');
    expect(ok[0]).toMatchObject({ enqueued: 6, unchanged: 0 });
    expect(ok[1]!.enqueued).toBe(0);
    expect(ok[1]!.unchanged + ok[1]!.stillQueued).toBe(6);

    await writeFile(csv, rows(true));
    const editedAt = Date.now();
    runs = await waitForRun('products', (all) => all.filter((run) => run.status === 'ok' && Date.parse(run.finishedAt) > editedAt + 100).length >= 2);
    const after = runs.filter((run) => run.status === 'ok' && Date.parse(run.finishedAt) > editedAt + 100);
    expect(after[0]!.enqueued).toBe(1);
    expect(after[1]!.enqueued).toBe(0);

    // The edited row was generated again, for its new prompt.
    await waitForRun('products', () => true);
    const images = new Queue('images', { connection: client, prefix });
    const jobs = await images.getJobs(['completed', 'active', 'waiting'], 0, 100);
    const editedJobs = jobs.filter((job) => job.data.row.id === 'p4');
    expect(editedJobs.map((job) => job.data.row.prompt).sort()).toEqual(['product 4', 'product 4 in blue']);
    expect(jobs.filter((job) => job.data.row.id === 'p1')).toHaveLength(1);
    await images.close();
  });

  it('full mode queues every row on every firing, also into a batch where they are done already', async () => {
    prefix = uniquePrefix('full');
    const folder = join(dir, 'full');
    await writeFile(join(await mkdir(folder, { recursive: true }).then(() => folder), 'rows.csv'), 'id,prompt\nf1,one\nf2,two\nf3,three\n');
    await definitionFile(folder, 'full.yaml', 'name: fullcat\ncsv: rows.csv\nschedule: { every: 2s }\nmode: full\ndefaults: { model: gemini-2.5-flash-image }\n');
    const env = envFor(join(dir, 'full-out'));
    expect((await runInProcess(['schedule', 'sync', folder], env)).code).toBe(0);
    const worker = startCli(['work', '--concurrency', '4'], env);
    processes.push(worker);
    // Each firing's rows are done before the next firing (2 s apart, 10 ms answers): the second
    // queues them again all the same.
    const runs = await waitForRun('fullcat', (all) => all.filter((run) => run.status === 'ok').length >= 2);
    const ok = runs.filter((run) => run.status === 'ok');
    expect(ok.slice(0, 2).map((run) => run.enqueued + run.stillQueued)).toEqual([3, 3]);
    const images = new Queue('images', { connection: client, prefix });
    await waitFor(async () => ((await images.getJobCounts('completed')).completed ?? 0) >= 6);
    await images.close();
  });

  it('sync after a definition file is deleted removes its scheduler; a bad cron is rejected by file and field while the others sync', async () => {
    prefix = uniquePrefix('sync');
    const folder = join(dir, 'sync');
    await definitionFile(folder, 'a.yaml', 'name: alpha\ncsv: a.csv\nschedule: { pattern: "0 3 * * *", tz: Europe/Berlin }\n');
    const bFile = await definitionFile(folder, 'b.yaml', 'name: beta\ncsv: b.csv\nschedule: { every: 1h }\n');
    const env = envFor(join(dir, 'sync-out'));
    expect((await runInProcess(['schedule', 'sync', folder], env)).code).toBe(0);
    let list = JSON.parse((await runInProcess(['schedule', 'list', '--format', 'json'], env)).stdout) as { name: string; next?: string; schedule: string }[];
    expect(list.map((item) => item.name)).toEqual(['alpha', 'beta']);
    expect(list[0]!.schedule).toBe('cron "0 3 * * *" Europe/Berlin');
    expect(Date.parse(list[0]!.next!)).toBeGreaterThan(Date.now());

    await unlink(bFile);
    await definitionFile(folder, 'c.yaml', 'name: gamma\ncsv: c.csv\nschedule: { pattern: "0 25 * * *" }\n');
    await definitionFile(folder, 'd.yaml', 'name: delta\ncsv: d.csv\nschedule: { every: 30m }\n');
    const sync = await runInProcess(['schedule', 'sync', folder], env);
    expect(sync.code).toBe(1);
    expect(sync.stdout).toContain(`removed beta (no definition of it in ${folder}`);
    expect(sync.stderr).toMatch(/rejected .*c\.yaml: schedule\.pattern: "0 25 \* \* \*" is not a cron pattern/);
    list = JSON.parse((await runInProcess(['schedule', 'list', '--format', 'json'], env)).stdout) as typeof list;
    expect(list.map((item) => item.name)).toEqual(['alpha', 'delta']);

    // A folder that is not there is a mistake, not "no definitions": nothing is removed.
    const typo = await runInProcess(['schedule', 'sync', join(dir, 'no-such-folder')], env);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('no-such-folder: no such folder; give the folder of catalog definitions');
    list = JSON.parse((await runInProcess(['schedule', 'list', '--format', 'json'], env)).stdout) as typeof list;
    expect(list.map((item) => item.name)).toEqual(['alpha', 'delta']);

    expect((await runInProcess(['schedule', 'remove', 'alpha'], env)).code).toBe(0);
    list = JSON.parse((await runInProcess(['schedule', 'list', '--format', 'json'], env)).stdout) as typeof list;
    expect(list.map((item) => item.name)).toEqual(['delta']);
  });

  it('a CSV missing at firing time fails that run with a clear reason, and the schedule stays', async () => {
    prefix = uniquePrefix('missing');
    const folder = join(dir, 'missing');
    await definitionFile(folder, 'm.yaml', 'name: missing\ncsv: nowhere.csv\nschedule: { pattern: "0 4 * * *" }\n');
    const env = envFor(join(dir, 'missing-out'));
    const sync = await runInProcess(['schedule', 'sync', folder], env);
    expect(sync.code).toBe(0);
    expect(sync.stderr).toMatch(/warning: missing: its CSV .*nowhere\.csv does not exist; each firing fails until it does/);
    expect((await runInProcess(['schedule', 'run', 'missing'], env)).code).toBe(0);
    const worker = startCli(['work'], env);
    processes.push(worker);
    const runs = await waitForRun('missing', (all) => all.length >= 1);
    expect(runs[0]!.status).toBe('failed');
    expect(runs[0]!.reason).toMatch(/nowhere\.csv cannot be read \(ENOENT\); the schedule stays/);
    const list = JSON.parse((await runInProcess(['schedule', 'list', '--format', 'json'], env)).stdout) as { name: string }[];
    expect(list.map((item) => item.name)).toEqual(['missing']);
    const status = await runInProcess(['status'], env);
    expect(status.stdout).toContain('catalog missing, last firings:');
    expect(status.stdout).toContain('failed (CSV');
  });
});
