/**
 * Webhooks, as a receiver sees them: a plain node:http server in the test checks each request's
 * signature with the product's `verifySignature` and again by hand with node:crypto. In-process
 * `run --notify` sends one signed `batch.finished`, `run.stopped` on a bad key and
 * `batch.over_budget` at the cap; a receiver that answers 500 twice gets the event on the third
 * try, in-process and from the queue across a killed worker; two `work` processes on one batch
 * send one `batch.finished` (and eight workers settling its last row at once, one), and on a bad
 * key one `run.stopped`; a catalog firing sends `catalog.firing_finished`. The API key is in no
 * body or header received.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { verifySignature } from '../src/notify/sign.js';
import type { WebhookEvent, WebhookOutbox } from '../src/notify/events.js';
import { BatchState } from '../src/queue/batch-state.js';
import { finishBatchIfSettled } from '../src/queue/batch-finish.js';
import type { ImageJobData } from '../src/queue/queue.js';
import { OutputStore } from '../src/output/storage.js';
import type { DeliveryLine } from '../src/notify/deliver.js';
import { startCli, startMockProcess, type CliProcess, type MockProcess } from './helpers/processes.js';
import { startSharingWorkers } from './helpers/shared-workers.js';
import { removePrefix, uniquePrefix } from './helpers/redis.js';
import { runInProcess } from './helpers/cli-in-process.js';

const KEY = 'sk-webhooks-9d2c41';
const SECRET = 'whsec-test-0123456789abcdef';
const redisUrl = inject('redisUrl');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  event: WebhookEvent;
  status: number;
}

/** The signature checked without the product's code: Stripe's scheme by hand. */
function verifiedByHand(header: string, body: string): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!match) return false;
  const expected = createHmac('sha256', SECRET).update(`${match[1]}.${body}`).digest();
  return Math.abs(Date.now() / 1000 - Number(match[1])) < 300 && timingSafeEqual(expected, Buffer.from(match[2]!, 'hex'));
}

/** A webhook receiver: answers the scripted statuses first, then 200; keeps every request. */
class Receiver {
  readonly received: Received[] = [];
  private script: number[] = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const status = this.script.shift() ?? 200;
        this.received.push({ headers: request.headers, body, event: JSON.parse(body) as WebhookEvent, status });
        response.writeHead(status).end();
      });
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    const address = this.server.address() as { port: number };
    this.url = `http://127.0.0.1:${address.port}/hooks/tokenhot?team=7`;
  }

  reset(script: number[] = []): void {
    this.received.length = 0;
    this.script = [...script];
  }

  ofType(type: string): Received[] {
    return this.received.filter((request) => request.event.type === type);
  }

  async until(what: string, ok: () => boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${this.received.map((r) => `${r.event.type} ${r.status}`).join(', ')}`);
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** What every request must show: signed (both checks), its headers, and no API key anywhere. */
function expectSigned(request: Received): void {
  const header = request.headers['tokenhot-signature'] as string;
  expect(verifySignature(SECRET, header, request.body)).toBe(true);
  expect(verifiedByHand(header, request.body)).toBe(true);
  expect(verifySignature('another-secret-0123456789', header, request.body)).toBe(false);
  expect(request.headers['content-type']).toBe('application/json');
  expect(request.headers['user-agent']).toBe('tokenhot-batch');
  expect(request.headers['tokenhot-event-id']).toBe(request.event.id);
  expect(request.event.id).toMatch(/^evt_[0-9a-f]{24}$/);
  expect(JSON.stringify(request.headers) + request.body).not.toContain(KEY);
  expect(JSON.stringify(request.headers) + request.body).not.toContain(SECRET);
}

async function deliveryLines(out: string): Promise<DeliveryLine[]> {
  const text = await readFile(join(out, 'webhooks', 'deliveries.jsonl'), 'utf8');
  return text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as DeliveryLine);
}

let dir: string;
let mock: MockProcess;
const receiver = new Receiver();
let csvCount = 0;

async function writeCsv(rows: number): Promise<string> {
  csvCount += 1;
  const path = join(dir, `hooks-${csvCount}.csv`);
  await writeFile(path, ['id,prompt', ...Array.from({ length: rows }, (_, i) => `r${i},"webhook row ${i} of file ${csvCount}"`)].join('\n'));
  return path;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'thb-webhooks-'));
  mock = await startMockProcess(['--api-key', KEY, '--latency-ms', '10']);
  await receiver.start();
});
afterAll(async () => {
  await mock.stop();
  await receiver.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('verifySignature', () => {
  const body = '{"id":"evt_1","type":"batch.finished"}';
  const now = Date.UTC(2026, 0, 1);
  const signed = (t: number, text = body, secret = SECRET) => `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${text}`).digest('hex')}`;
  const t = Math.floor(now / 1000);

  it('takes the body as signed, and refuses another body, secret, an old timestamp or no header', () => {
    expect(verifySignature(SECRET, signed(t), body, 300, now)).toBe(true);
    expect(verifySignature(SECRET, signed(t), Buffer.from(body), 300, now)).toBe(true);
    expect(verifySignature(SECRET, signed(t), body.replace('finished', 'stopped'), 300, now)).toBe(false);
    expect(verifySignature(SECRET, signed(t, body, 'other-secret-0123456789'), body, 300, now)).toBe(false);
    expect(verifySignature(SECRET, signed(t - 301), body, 300, now)).toBe(false);
    expect(verifySignature(SECRET, signed(t - 299), body, 300, now)).toBe(true);
    expect(verifySignature(SECRET, undefined, body, 300, now)).toBe(false);
    expect(verifySignature(SECRET, `t=${t},v1=zz`, body, 300, now)).toBe(false);
    // Several v1 (a secret being rotated): any may match.
    expect(verifySignature(SECRET, `${signed(t, body, 'old-secret-0123456789')},v1=${signed(t).split('v1=')[1]}`, body, 300, now)).toBe(true);
  });
});

describe('in-process run --notify', () => {
  afterEach(() => receiver.reset());
  const env = (out: string, extra: Record<string, string> = {}) => ({ TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_WEBHOOK_SECRET: SECRET, TOKENHOT_OUT_DIR: out, ...extra });

  it('sends one signed batch.finished with the counts, cost and manifest, and logs the delivery', async () => {
    const csv = await writeCsv(6);
    const out = join(dir, 'out-local');
    const result = await runInProcess(['run', csv, '--batch', 'local', '--plain', '--notify', receiver.url], env(out));
    expect(result.code, result.stderr).toBe(0);
    expect(receiver.received).toHaveLength(1);
    const [request] = receiver.received;
    expectSigned(request!);
    const event = request!.event as WebhookEvent<'batch.finished'>;
    expect(event.type).toBe('batch.finished');
    expect(event.data).toMatchObject({ batch: 'local', rows: 6, done: 6, failed: 0, overBudget: 0, manifest: join(out, 'local', 'manifest.csv') });
    expect(event.data.costUsd).toBeGreaterThan(0);
    expect(existsSync(event.data.manifest!)).toBe(true);
    expect(Date.parse(event.createdAt)).toBeGreaterThan(Date.now() - 60_000);
    const lines = await deliveryLines(out);
    // The query is not logged (it may hold a token).
    expect(lines).toEqual([expect.objectContaining({ eventId: event.id, type: 'batch.finished', url: receiver.url.split('?')[0], attempt: 1, status: 200, outcome: 'delivered' })]);
  });

  it('a receiver that answers 500 twice gets the same event on the third try', async () => {
    receiver.reset([500, 500]);
    const csv = await writeCsv(2);
    const out = join(dir, 'out-retry');
    const started = Date.now();
    const result = await runInProcess(['run', csv, '--batch', 'retry', '--plain', '--notify', receiver.url], env(out, { TOKENHOT_WEBHOOK_BACKOFF_MS: '100' }));
    expect(result.code, result.stderr).toBe(0);
    expect(receiver.received.map((request) => request.status)).toEqual([500, 500, 200]);
    expect(new Set(receiver.received.map((request) => request.event.id)).size).toBe(1);
    receiver.received.forEach(expectSigned);
    expect((await deliveryLines(out)).map((line) => [line.attempt, line.status, line.outcome])).toEqual([
      [1, 500, 'retry'],
      [2, 500, 'retry'],
      [3, 200, 'delivered'],
    ]);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('a bad key stops the run: run.stopped with the reason, and the key in no body', async () => {
    const csv = await writeCsv(3);
    const out = join(dir, 'out-stopped');
    const wrong = 'sk-wrong-key-5511aa';
    const result = await runInProcess(['run', csv, '--batch', 'stopped', '--plain', '--notify', receiver.url], { ...env(out), TOKENHOT_API_KEY: wrong });
    expect(result.code).toBe(2);
    expect(receiver.received.map((request) => request.event.type)).toEqual(['run.stopped']);
    const request = receiver.received[0]!;
    expectSigned(request);
    expect(request.body).not.toContain(wrong);
    expect((request.event as WebhookEvent<'run.stopped'>).data).toMatchObject({ batch: 'stopped', reason: expect.stringMatching(/key|401|403/i) });
  });

  it('at the budget: one batch.over_budget, then batch.finished counting the rows over budget', async () => {
    const csv = await writeCsv(4);
    const out = join(dir, 'out-budget');
    const result = await runInProcess(['run', csv, '--batch', 'capped', '--plain', '--model', 'gemini-2.5-flash-image', '--budget-usd', '0.05', '--concurrency', '1', '--notify', receiver.url], env(out));
    expect(result.code, result.stdout).toBe(1);
    expect(receiver.received.map((request) => request.event.type).sort()).toEqual(['batch.finished', 'batch.over_budget']);
    receiver.received.forEach(expectSigned);
    const over = receiver.ofType('batch.over_budget')[0]!.event as WebhookEvent<'batch.over_budget'>;
    expect(over.data).toMatchObject({ batch: 'capped', budgetUsd: 0.05 });
    expect(over.data.spendUsd).toBeGreaterThan(0);
    const finished = receiver.ofType('batch.finished')[0]!.event as WebhookEvent<'batch.finished'>;
    expect(finished.data).toMatchObject({ batch: 'capped', rows: 4, done: 1, failed: 0, overBudget: 3 });
  });

  it('--notify without TOKENHOT_WEBHOOK_SECRET, or with a URL that is not http(s), exits 2 before any call', async () => {
    const csv = await writeCsv(1);
    await mock.reset();
    const noSecret = await runInProcess(['run', csv, '--notify', receiver.url], { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: join(dir, 'out-refused') });
    expect(noSecret.code).toBe(2);
    expect(noSecret.stderr).toContain('TOKENHOT_WEBHOOK_SECRET is not set');
    const badUrl = await runInProcess(['run', csv, '--notify', 'ftp://example.com/x'], env(join(dir, 'out-refused')));
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain('--notify: "ftp://example.com/x" is not an http(s) URL');
    expect(await mock.requests()).toHaveLength(0);
    expect(receiver.received).toHaveLength(0);
  });
});

describe('queue mode', () => {
  const prefixes: string[] = [];
  const workers: CliProcess[] = [];
  afterEach(async () => {
    receiver.reset();
    for (const worker of workers.splice(0)) if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
    for (const prefix of prefixes.splice(0)) await removePrefix(redisUrl, prefix);
  });
  const queueEnv = (name: string, extra: Record<string, string> = {}) => {
    const prefix = uniquePrefix(name);
    prefixes.push(prefix);
    return { REDIS_URL: redisUrl, TOKENHOT_QUEUE_PREFIX: prefix, TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_WEBHOOK_SECRET: SECRET, TOKENHOT_OUT_DIR: join(dir, `out-${prefix}`), ...extra };
  };

  it('two workers on one batch: exactly one signed batch.finished', async () => {
    const env = queueEnv('hooks-two');
    const csv = await writeCsv(10);
    const enqueued = await runInProcess(['enqueue', csv, '--batch', 'shared', '--plain', '--notify', receiver.url], env);
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const started = await startSharingWorkers(mock, 2, ['--until-drained', '--no-catalog', '--plain', '--concurrency', '2'], env);
    workers.push(...started);
    const results = await Promise.all(started.map((worker) => worker.done));
    for (const result of results) expect(result.code, result.stderr).toBe(0);
    const did = results.map((result) => Number(result.stdout.match(/this worker did (\d+) row/)?.[1] ?? 0));
    expect(did.every((n) => n > 0), did.join(' + ')).toBe(true);
    // Delivered during a worker's stop (its grace for waiting events); nothing more comes later.
    await receiver.until('batch.finished', () => receiver.received.length >= 1, 5_000);
    await sleep(500);
    expect(receiver.received).toHaveLength(1);
    const request = receiver.received[0]!;
    expectSigned(request);
    expect(request.event).toMatchObject({ type: 'batch.finished', data: { batch: 'shared', rows: 10, done: 10, failed: 0, overBudget: 0 } });
    expect((request.event as WebhookEvent<'batch.finished'>).data.manifest).toBe(join(env.TOKENHOT_OUT_DIR, 'shared', 'manifest.csv'));
  });

  it('finishBatchIfSettled from eight workers at once: one batch.finished; rows added later let the batch finish again', async () => {
    const prefix = uniquePrefix('hooks-claim');
    prefixes.push(prefix);
    const store = new OutputStore(join(dir, `out-${prefix}`));
    const sent: WebhookEvent[] = [];
    const outbox: WebhookOutbox = { send: async (_urls, event) => void sent.push(event) };
    const clients = Array.from({ length: 8 }, () => new Redis(redisUrl));
    try {
      const states = clients.map((client) => new BatchState(client, prefix, outbox));
      const [first] = states;
      await first!.register('claimed', { csv: 'x.csv' });
      await first!.setNotifyUrls('claimed', [receiver.url]);
      await first!.markQueued('claimed', ['a', 'b']);
      await first!.markDone('claimed', 'a');
      await first!.markDone('claimed', 'b');
      const log = pino({ level: 'silent' });
      const settle = () => Promise.all(states.map((batches) => finishBatchIfSettled({ batches, store, log }, { row: { batch: 'claimed' } as ImageJobData['row'] })));
      await settle();
      expect(sent.map((event) => event.type)).toEqual(['batch.finished']);
      await settle();
      expect(sent).toHaveLength(1);
      // Enqueued again and finished again: told again, once.
      await first!.markQueued('claimed', ['c']);
      await first!.markDone('claimed', 'c');
      await settle();
      expect(sent.map((event) => event.data)).toEqual([expect.objectContaining({ rows: 2, done: 2 }), expect.objectContaining({ rows: 3, done: 3 })]);
    } finally {
      for (const client of clients) client.disconnect();
    }
  });

  it('a bad key stops both workers: one run.stopped for the batch', async () => {
    const env = queueEnv('hooks-stopped', { TOKENHOT_API_KEY: 'sk-wrong-key-7731bc' });
    const csv = await writeCsv(4);
    expect((await runInProcess(['enqueue', csv, '--batch', 'halted', '--plain', '--notify', receiver.url], env)).code).toBe(0);
    const started = [0, 1].map(() => startCli(['work', '--until-drained', '--no-catalog', '--plain'], env));
    workers.push(...started);
    for (const result of await Promise.all(started.map((worker) => worker.done))) expect(result.code).toBe(2);
    await receiver.until('run.stopped', () => receiver.received.length >= 1, 5_000);
    await sleep(500);
    expect(receiver.received.map((request) => request.event.type)).toEqual(['run.stopped']);
    expectSigned(receiver.received[0]!);
    expect(receiver.received[0]!.body).not.toContain('sk-wrong-key-7731bc');
    expect(receiver.received[0]!.event.data).toMatchObject({ batch: 'halted', reason: expect.stringMatching(/key|401|403/i) });
  });

  it('run with REDIS_URL: the batch.finished of its batch, from its own worker', async () => {
    const env = queueEnv('hooks-run');
    const csv = await writeCsv(3);
    const result = await runInProcess(['run', csv, '--batch', 'queued-run', '--plain', '--notify', receiver.url], env);
    expect(result.code, result.stderr).toBe(0);
    expect(receiver.received.map((request) => request.event.type)).toEqual(['batch.finished']);
    expectSigned(receiver.received[0]!);
    expect(receiver.received[0]!.event.data).toMatchObject({ batch: 'queued-run', rows: 3, done: 3 });
  });

  it('a batch whose output cannot be opened: its rows fail unbilled, and batch.finished still comes, without a manifest', async () => {
    const env = queueEnv('hooks-no-output');
    const csv = await writeCsv(3);
    // A folder no worker can make: a file is in the way.
    await writeFile(join(dir, 'in-the-way'), 'a file, not a folder\n');
    const out = join(dir, 'in-the-way', 'images');
    const enqueued = await runInProcess(['enqueue', csv, '--batch', 'nowhere', '--out', out, '--attempts', '1', '--plain', '--notify', receiver.url], env);
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const worker = startCli(['work', '--until-drained', '--no-catalog', '--plain'], env);
    workers.push(worker);
    const result = await worker.done;
    expect(result.code, result.stderr).toBe(1);
    await receiver.until('batch.finished', () => receiver.received.length >= 1, 5_000);
    expect(receiver.received.map((request) => request.event.type)).toEqual(['batch.finished']);
    expectSigned(receiver.received[0]!);
    expect(receiver.received[0]!.event.data).toEqual({ batch: 'nowhere', rows: 3, done: 0, failed: 3, overBudget: 0, costUsd: 0, manifest: null, deliver: 'all' });
  });

  it('500 twice: the same event on the third try, retried from Redis by another worker after the first was killed', async () => {
    receiver.reset([500, 500]);
    const env = queueEnv('hooks-retry', { TOKENHOT_WEBHOOK_BACKOFF_MS: '1500' });
    const csv = await writeCsv(2);
    const enqueued = await runInProcess(['enqueue', csv, '--batch', 'retried', '--plain', '--notify', receiver.url], env);
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const first = startCli(['work', '--no-catalog', '--plain'], env);
    workers.push(first);
    // The first attempt fails (500); the worker is killed before the retry is due (1.5 s later).
    await receiver.until('the first attempt', () => receiver.received.length >= 1);
    await sleep(300);
    first.child.kill('SIGKILL');
    await first.done;
    expect(receiver.received).toHaveLength(1);
    const second = startCli(['work', '--no-catalog', '--plain'], env);
    workers.push(second);
    await receiver.until('the third try', () => receiver.received.length >= 3);
    second.child.kill('SIGTERM');
    await second.done;

    expect(receiver.received.map((request) => request.status)).toEqual([500, 500, 200]);
    receiver.received.forEach(expectSigned);
    // One event: its id is kept across attempts and workers.
    expect(new Set(receiver.received.map((request) => request.event.id)).size).toBe(1);
    expect(receiver.received[0]!.event).toMatchObject({ type: 'batch.finished', data: { batch: 'retried', rows: 2, done: 2 } });
    const lines = await deliveryLines(env.TOKENHOT_OUT_DIR);
    expect(lines.map((line) => [line.attempt, line.status, line.outcome])).toEqual([
      [1, 500, 'retry'],
      [2, 500, 'retry'],
      [3, 200, 'delivered'],
    ]);
  });

  it('at the budget: one batch.over_budget, and batch.finished counting the rows parked', async () => {
    const env = queueEnv('hooks-budget');
    const csv = await writeCsv(4);
    const enqueued = await runInProcess(['enqueue', csv, '--batch', 'capped', '--plain', '--model', 'gemini-2.5-flash-image', '--budget-usd', '0.05', '--notify', receiver.url], env);
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const started = [0, 1].map(() => startCli(['work', '--until-drained', '--no-catalog', '--plain', '--concurrency', '2'], env));
    workers.push(...started);
    for (const result of await Promise.all(started.map((worker) => worker.done))) expect(result.code, result.stderr).toBe(0);
    await receiver.until('both events', () => receiver.received.length >= 2, 5_000);
    await sleep(500);
    receiver.received.forEach(expectSigned);
    expect(receiver.received.map((request) => request.event.type).sort()).toEqual(['batch.finished', 'batch.over_budget']);
    expect(receiver.ofType('batch.over_budget')[0]!.event.data).toMatchObject({ batch: 'capped', budgetUsd: 0.05 });
    expect(receiver.ofType('batch.finished')[0]!.event.data).toMatchObject({ batch: 'capped', rows: 4, done: 1, failed: 0, overBudget: 3 });
  });

  it('a catalog firing sends catalog.firing_finished and its batch batch.finished', async () => {
    const env = queueEnv('hooks-catalog');
    const folder = join(dir, 'jobs');
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, 'rows.csv'), ['id,prompt', 'a,"catalog row a"', 'b,"catalog row b"'].join('\n'));
    await writeFile(join(folder, 'nightly.yaml'), `name: nightly\ncsv: rows.csv\nschedule: { every: 1h }\nbatch: "{name}/{date}"\nnotify:\n  - ${receiver.url}\n`);
    expect((await runInProcess(['schedule', 'sync', folder], env)).code).toBe(0);
    const worker = startCli(['work', '--plain', '--concurrency', '2'], env);
    workers.push(worker);
    const fired = await runInProcess(['schedule', 'run', 'nightly'], env);
    expect(fired.code, fired.stderr).toBe(0);
    await receiver.until('both events', () => receiver.ofType('catalog.firing_finished').length === 1 && receiver.ofType('batch.finished').length === 1);
    worker.child.kill('SIGTERM');
    await worker.done;
    receiver.received.forEach(expectSigned);
    const firing = receiver.ofType('catalog.firing_finished')[0]!.event as WebhookEvent<'catalog.firing_finished'>;
    expect(firing.data).toMatchObject({ catalog: 'nightly', status: 'ok', enqueued: 2, unchanged: 0, rejected: 0 });
    expect(receiver.ofType('batch.finished')[0]!.event.data).toMatchObject({ batch: firing.data.batch, rows: 2, done: 2 });
  });
});
