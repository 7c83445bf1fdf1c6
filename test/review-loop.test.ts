/**
 * The review loop end to end, with real processes: a batch of ten made by `run` against a
 * `mock-server` process; decisions sent to the page of a `review` process as the page sends
 * them; `review list`; a cross-site write refused; `regenerate --rejected --guided` asking the
 * mock for exactly the two rejected rows with their notes; the old images kept as versions; the
 * report's cost per approved image; a manifest of approved rows only; the same page served by
 * the dashboard behind basic auth, the user recorded as who decided.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { BatchState } from '../src/queue/batch-state.js';
import { OutputStore } from '../src/output/storage.js';
import { writeManifest } from '../src/output/manifest.js';
import { updateLatest } from '../src/output/latest.js';
import { REVIEWS_FILE } from '../src/output/reviews.js';
import { startCli, startMockProcess, type CliProcess, type MockProcess } from './helpers/processes.js';
import { writeCsv } from './browser/pipeline.js';
import { removePrefix, uniquePrefix } from './helpers/redis.js';
import { runInProcess } from './helpers/cli-in-process.js';

const KEY = 'review-test-key-42';
const BATCH = 'mugs';
const NOTES = { 'row-04': 'the logo is mirrored', 'row-07': 'three buckles on the strap' } as const;

let dir: string;
let out: string;
let mock: MockProcess | undefined;
let review: CliProcess | undefined;
let url: string;
let env: Record<string, string>;

/** `review <out> --port 0` in its own process; resolves with its page's base URL. */
async function startReview(): Promise<string> {
  review = startCli(['review', out, '--port', '0'], env);
  const started = Date.now();
  for (;;) {
    const match = review.stderr().match(/review page on (http:\/\/127\.0\.0\.1:\d+)/);
    if (match) return match[1]!;
    if (review.child.exitCode !== null || Date.now() - started > 20_000) throw new Error(`review did not start: ${review.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function decide(rowId: string, decision: string, note?: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/review/${BATCH}/decisions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify({ rowId, decision, ...(note ? { note } : {}) }),
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'thb-review-'));
  out = join(dir, 'out');
  mock = await startMockProcess(['--api-key', KEY]);
  env = { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: out, TOKENHOT_DURABLE: '0' };
  const rows = Array.from({ length: 10 }, (_, index) => ({ id: `row-${String(index + 1).padStart(2, '0')}`, prompt: `Mug number ${index + 1} on a white table`, model: 'gemini-2.5-flash-image', tags: ['mugs'] }));
  const run = await runInProcess(['run', await writeCsv(join(dir, 'mugs.csv'), rows), '--batch', BATCH, '--plain'], env);
  expect(run.code, run.stderr).toBe(0);
  url = await startReview();
  for (const id of ['row-01', 'row-02', 'row-03']) expect((await decide(id, 'approved')).status).toBe(200);
  for (const [id, note] of Object.entries(NOTES)) expect((await decide(id, 'rejected', note)).status).toBe(200);
}, 90_000);

afterAll(async () => {
  if (review && review.child.exitCode === null) {
    review.child.kill('SIGTERM');
    await review.done;
  }
  await mock?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('review decisions', () => {
  it('are kept as JSON lines beside the sidecars, with who and when', async () => {
    const lines = (await readFile(join(out, BATCH, REVIEWS_FILE), 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
    expect(lines).toHaveLength(5);
    expect(lines[3]).toMatchObject({ rowId: 'row-04', decision: 'rejected', note: NOTES['row-04'] });
    expect(typeof lines[3].who).toBe('string');
    expect(Number.isNaN(Date.parse(lines[3].at))).toBe(false);
  });

  it('are listed by the CLI: the two rejected rows with their notes', async () => {
    const listed = await runInProcess(['review', 'list', '--out', out, '--batch', BATCH, '--rejected', '--format', 'json'], env);
    expect(listed.code, listed.stderr).toBe(0);
    const rows = JSON.parse(listed.stdout) as { rowId: string; review: string; note?: string }[];
    expect(rows.map((row) => [row.rowId, row.review, row.note])).toEqual([
      ['row-04', 'rejected', NOTES['row-04']],
      ['row-07', 'rejected', NOTES['row-07']],
    ]);
    const table = await runInProcess(['review', 'list', '--out', out, '--approved'], env);
    expect(table.stdout).toContain('3 row(s)');
  });

  it('refuse a cross-site write (403) and one that is not JSON, and record nothing for them', async () => {
    const before = await readFile(join(out, BATCH, REVIEWS_FILE), 'utf8');
    const crossSite = await decide('row-05', 'approved', undefined, { Origin: 'https://evil.example', 'Sec-Fetch-Site': 'cross-site' });
    expect(crossSite.status).toBe(403);
    const sameHostOtherSite = await decide('row-05', 'approved', undefined, { 'Sec-Fetch-Site': 'cross-site' });
    expect(sameHostOtherSite.status).toBe(403);
    // What a cross-site form can send without a preflight.
    const form = await fetch(`${url}/review/${BATCH}/decisions`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{"rowId":"row-05","decision":"approved"}' });
    expect(form.status).toBe(403);
    expect(await readFile(join(out, BATCH, REVIEWS_FILE), 'utf8')).toBe(before);
  });

  it('serve only image files of the batch folder, and take decisions only on its rows', async () => {
    expect((await fetch(`${url}/review/${BATCH}/image/row-01.png`)).status).toBe(200);
    expect((await fetch(`${url}/review/${BATCH}/image/${encodeURIComponent('../mugs.csv')}`)).status).toBe(404);
    expect((await fetch(`${url}/review/${BATCH}/image/${encodeURIComponent('../../out/mugs/row-01.png')}`)).status).toBe(404);
    expect((await fetch(`${url}/review/${BATCH}/image/row-01.json`)).status).toBe(404);
    expect((await fetch(`${url}/review/${BATCH}/image/${REVIEWS_FILE}`)).status).toBe(404);
    expect((await fetch(`${url}/review/${encodeURIComponent('../out')}/rows`)).status).toBe(400);
    expect((await decide('row-99', 'approved')).status).toBe(404);
    expect((await decide('../mugs', 'approved')).status).toBe(404);
    expect((await decide('row-05', 'maybe')).status).toBe(400);
  });

  it('limit a manifest and latest/ to approved rows with deliver: approved', async () => {
    const store = new OutputStore(out, { durable: false });
    expect((await writeManifest(store, BATCH, { deliver: 'approved' })).rows).toBe(3);
    expect((await writeManifest(store, BATCH)).rows).toBe(10);
    const latest = await updateLatest(store, 'nightly', BATCH, { deliver: 'approved' });
    expect(latest.entries).toBe(3);
    expect(existsSync(join(out, 'latest', 'nightly', 'row-01.png'))).toBe(true);
    expect(existsSync(join(out, 'latest', 'nightly', 'row-04.png'))).toBe(false);
  });
});

describe('regenerate --rejected --guided', () => {
  it('puts the kept versions back, still rejected, when the run stops before making them (a wrong key)', async () => {
    const before = await readFile(join(out, BATCH, 'row-04.png'));
    const stopped = await runInProcess(['regenerate', '--batch', BATCH, '--rejected', '--guided', '--plain'], { ...env, TOKENHOT_API_KEY: 'not-the-key' });
    expect(stopped.code, stopped.stdout + stopped.stderr).toBe(2);
    expect(stopped.stderr).toContain('row-04: not made again; row-04.v1 put back, still rejected');
    expect(await readFile(join(out, BATCH, 'row-04.png'))).toEqual(before);
    expect(existsSync(join(out, BATCH, 'row-04.v1.json'))).toBe(false);
    const listed = JSON.parse((await runInProcess(['review', 'list', '--out', out, '--batch', BATCH, '--rejected', '--format', 'json'], env)).stdout) as { rowId: string; note: string }[];
    expect(listed.map((row) => [row.rowId, row.note])).toEqual([
      ['row-04', NOTES['row-04']],
      ['row-07', NOTES['row-07']],
    ]);
  }, 60_000);

  it('asks the mock for exactly the two rejected rows, notes in the prompts, and keeps the old images as v1', async () => {
    const oldImage = await readFile(join(out, BATCH, 'row-04.png'));
    await mock!.reset();
    const regenerated = await runInProcess(['regenerate', '--batch', BATCH, '--rejected', '--guided', '--plain'], env);
    expect(regenerated.code, regenerated.stderr + regenerated.stdout).toBe(0);
    const prompts = (await mock!.requests()).map((request) => request.prompt).sort();
    expect(prompts).toEqual([`Mug number 4 on a white table\n\nAvoid: ${NOTES['row-04']}`, `Mug number 7 on a white table\n\nAvoid: ${NOTES['row-07']}`]);
    expect(await readFile(join(out, BATCH, 'row-04.v1.png'))).toEqual(oldImage);
    expect(existsSync(join(out, BATCH, 'row-04.v1.json'))).toBe(true);
    expect(existsSync(join(out, BATCH, 'row-07.v1.png'))).toBe(true);
    expect(existsSync(join(out, BATCH, 'row-04.png'))).toBe(true);

    // The new images are unreviewed; the old decisions stay in the file.
    const rejected = await runInProcess(['review', 'list', '--out', out, '--batch', BATCH, '--rejected', '--format', 'json'], env);
    expect(JSON.parse(rejected.stdout)).toEqual([]);
    const unreviewed = JSON.parse((await runInProcess(['review', 'list', '--out', out, '--batch', BATCH, '--unreviewed', '--format', 'json'], env)).stdout) as { rowId: string }[];
    expect(unreviewed.map((row) => row.rowId)).toEqual(['row-04', 'row-05', 'row-06', 'row-07', 'row-08', 'row-09', 'row-10']);
    expect(await readFile(join(out, BATCH, REVIEWS_FILE), 'utf8')).toContain(NOTES['row-07']);

    // Nothing left to make again: no call.
    await mock!.reset();
    const again = await runInProcess(['regenerate', '--batch', BATCH, '--rejected'], env);
    expect(again.stdout).toContain('no rejected rows');
    expect(await mock!.requests()).toEqual([]);
  }, 60_000);

  it('bills the same batch and tags, and the report shows the cost per approved image', async () => {
    const report = await runInProcess(['report', '--batch', BATCH, '--by', 'tag', '--format', 'json'], env);
    expect(report.code, report.stderr).toBe(0);
    const json = JSON.parse(report.stdout);
    // 10 first answers and 2 again, all under the batch and its tag.
    expect(json.totals.requests).toBe(12);
    expect(json.groups.map((group: { key: { tag: string }; requests: number }) => [group.key.tag, group.requests])).toEqual([['mugs', 12]]);
    expect(json.reviews.totals).toMatchObject({ rows: 10, approved: 3, rejected: 0, unreviewed: 7, approvedImages: 3, approvalRate: 1 });
    expect(json.reviews.totals.costPerApprovedImageUsd).toBeCloseTo(json.totals.costUsd / 3, 9);
    const table = await runInProcess(['report', '--batch', BATCH], env);
    expect(table.stdout).toMatch(/per approved image/);
    const html = await runInProcess(['report', '--batch', BATCH, '--format', 'html'], env);
    const perApproved = `$${(json.totals.costUsd / 3).toFixed(4)}`;
    expect(html.stdout).toContain('<h2>Review: cost per approved image</h2>');
    expect(html.stdout).toContain(`<td class="key" colspan="2">TOTAL</td><td class="money">${perApproved}</td><td>100.0%</td><td>3</td><td>0</td><td>7</td><td>10</td>`);
  });
});

describe('the dashboard', () => {
  const redisUrl = inject('redisUrl');
  const prefix = uniquePrefix('review');
  let dashboard: CliProcess | undefined;

  afterAll(async () => {
    if (dashboard && dashboard.child.exitCode === null) {
      dashboard.child.kill('SIGTERM');
      await dashboard.done;
    }
    await removePrefix(redisUrl, prefix);
  });

  it("serves the review page at /review/<batch> behind its basic auth, the user as who decided; a job's batch from the job's out:", async () => {
    // The batch was made by a job with `out:` (its meta says where), not in the dashboard's own output folder.
    const client = new Redis(redisUrl, { maxRetriesPerRequest: null });
    await new BatchState(client, prefix).register(BATCH, { csv: 'mugs.csv', job: 'mugs', out });
    client.disconnect();
    dashboard = startCli(['dashboard', '--port', '0'], { ...env, TOKENHOT_OUT_DIR: join(dir, 'dashboard-out'), REDIS_URL: redisUrl, TOKENHOT_QUEUE_PREFIX: prefix, TOKENHOT_DASHBOARD_USER: 'ana', TOKENHOT_DASHBOARD_PASSWORD: 'review pass 42' });
    const started = Date.now();
    let base: string | undefined;
    while (!base) {
      base = dashboard.stderr().match(/dashboard on (http:\/\/[\d.:]+)\//)?.[1];
      if (dashboard.child.exitCode !== null || Date.now() - started > 20_000) throw new Error(`dashboard did not start: ${dashboard.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect((await fetch(`${base}/review/${BATCH}`)).status).toBe(401);
    const authorization = `Basic ${Buffer.from('ana:review pass 42').toString('base64')}`;
    const page = await fetch(`${base}/review/${BATCH}`, { headers: { authorization } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Review: batch mugs');
    const post = (headers: Record<string, string>): Promise<Response> =>
      fetch(`${base}/review/${BATCH}/decisions`, { method: 'POST', headers: { authorization, 'Content-Type': 'application/json', ...headers }, body: JSON.stringify({ rowId: 'row-10', decision: 'approved' }) });
    expect((await post({ Origin: 'https://evil.example' })).status).toBe(403);
    const accepted = await post({ Origin: base, 'Sec-Fetch-Site': 'same-origin' });
    expect(accepted.status).toBe(200);
    expect(await accepted.json()).toMatchObject({ rowId: 'row-10', decision: 'approved', who: 'ana' });
  }, 30_000);
});
