/**
 * Outputs in a bucket (`--out s3://bucket/prefix`) on a real S3-compatible server (s3rver in its
 * own process, over loopback HTTP), against a mock-server process: every image object is the
 * bytes the mock sent, every row has its sidecar object, the ledger is shipped to the bucket,
 * `report --out s3://...` equals the mock's bill, and a second run asks for nothing again.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { updateLatest } from '../src/output/latest.js';
import { writeManifest } from '../src/output/manifest.js';
import { MULTIPART_FROM } from '../src/output/s3-bucket.js';
import { OutputStore } from '../src/output/storage.js';
import { runInProcess } from './helpers/cli-in-process.js';
import { mockBill, usd } from './helpers/mock-bill.js';
import { startMockProcess, type MockProcess, type MockRecord } from './helpers/processes.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';

const KEY = 'sk-s3-output-4b7e21';
const BUCKET = 'thb-outputs';
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** The images the mock sent for each prompt, from its last answer with images. */
function sentImages(records: MockRecord[]): Map<string, string[]> {
  const byPrompt = new Map<string, string[]>();
  for (const record of records) if (record.status === 200 && record.images.length > 0) byPrompt.set(record.prompt, record.images.map((image) => image.sha256));
  return byPrompt;
}

describe('outputs in an S3-compatible bucket', () => {
  let mock: MockProcess;
  let s3: S3Server;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'thb-s3-'));
    [mock, s3] = await Promise.all([startMockProcess(['--api-key', KEY, '--latency-ms', '10']), startS3Server([BUCKET])]);
  });
  afterAll(async () => {
    await Promise.all([mock?.stop(), s3?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('run --out s3://: images byte-identical, sidecars after them, ledger shipped, report equal to the bill; a second run asks nothing', async () => {
    const models = ['gemini-3-pro-image-preview', 'gemini-2.5-flash-image', 'gpt-image-2'];
    const rows = Array.from({ length: 12 }, (_, i) => {
      let prompt = `a teapot on a table, view ${i}`;
      if (i === 4) prompt += ' [mock:blocked]';
      if (i === 7) prompt += ' [mock:two-images]';
      if (i === 9) prompt += ' [mock:503x1]';
      return { id: `t${String(i).padStart(2, '0')}`, prompt, model: models[i % models.length]! };
    });
    const csv = join(dir, 'teapots.csv');
    await writeFile(csv, ['id,prompt,model', ...rows.map((row) => `${row.id},"${row.prompt}",${row.model}`)].join('\n'));
    const spool = join(dir, 'spool-run');
    const env = { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_SPOOL_DIR: spool, ...s3.env };
    const out = `s3://${BUCKET}/shop/nightly`;

    const first = await runInProcess(['run', csv, '--out', out, '--plain', '--concurrency', '4'], env);
    expect(first.stdout + first.stderr).not.toContain(KEY);
    expect(first.stdout, first.stderr).toContain('11 done, 1 failed');
    expect(first.code).toBe(1);

    const records = (await mock.requests()).filter((record) => rows.some((row) => row.prompt === record.prompt));
    const sent = sentImages(records);
    const objects = await s3.objects(BUCKET, 'shop/nightly/');
    const keys = objects.map((object) => object.key);
    // Nothing half-made or temporary in the bucket: images, sidecars, the manifest and the ledger.
    for (const key of keys) expect(key).toMatch(/^shop\/nightly\/(teapots\/(t\d\d(-2)?\.(png|jpg|webp)|t\d\d\.json|manifest\.(csv|json))|ledger\/[^/]+\.jsonl)$/);
    for (const row of rows) {
      const sidecar = JSON.parse((await s3.read(BUCKET, `shop/nightly/teapots/${row.id}.json`)).toString()) as { status: string; images: { file: string }[] };
      if (row.id === 't04') {
        expect(sidecar.status).toBe('failed');
        continue;
      }
      expect(sidecar.status, row.id).toBe('done');
      const images = await Promise.all(sidecar.images.map(async (image) => sha256(await s3.read(BUCKET, `shop/nightly/teapots/${image.file}`))));
      expect(images, row.id).toEqual(sent.get(row.prompt));
    }
    expect(sent.get(rows[7]!.prompt)).toHaveLength(2);

    // The manifest, as objects beside the sidecars.
    const manifest = (await s3.read(BUCKET, 'shop/nightly/teapots/manifest.csv')).toString().trim().split('\n');
    expect(manifest).toHaveLength(rows.length + 1);
    expect(manifest.find((line) => line.startsWith('t07,'))).toContain(',teapots/t07.png;teapots/t07-2.png,done,');
    expect(keys).toContain('shop/nightly/teapots/manifest.json');

    // The ledger is in the bucket, and nothing is left in the spool.
    expect(keys.filter((key) => key.startsWith('shop/nightly/ledger/')).length).toBeGreaterThan(0);
    expect(await readdir(join(spool, BUCKET, 'shop', 'nightly', 'ledger'))).toEqual([]);

    const report = await runInProcess(['report', '--out', out, '--by', 'model', '--format', 'json'], { ...s3.env, TOKENHOT_SPOOL_DIR: join(dir, 'spool-elsewhere') });
    expect(report.code, report.stderr).toBe(0);
    const groups = (JSON.parse(report.stdout) as { groups: { key: { model: string }; costUsd: number; requests: number }[] }).groups;
    const bill = mockBill(records);
    expect(groups.map((group) => group.key.model).sort()).toEqual([...bill.keys()].map((key) => key.split('/')[1]).sort());
    for (const group of groups) {
      const billed = [...bill.entries()].find(([key]) => key.endsWith(`/${group.key.model}`))![1];
      expect(Math.abs(group.costUsd - usd(billed)), group.key.model).toBeLessThan(1e-9);
    }

    const asked = (await mock.requests()).length;
    const second = await runInProcess(['run', csv, '--out', out, '--plain'], env);
    expect(second.stdout, second.stderr).toContain('11 already done');
    expect((await mock.requests()).length).toBe(asked);
  });

  /** A store on the bucket, as a process with these settings opens it. */
  function bucketStore(prefix: string): OutputStore {
    return new OutputStore(`s3://${BUCKET}/${prefix}`, { env: { ...process.env, ...s3.env, TOKENHOT_SPOOL_DIR: join(dir, `spool-${prefix}`) } });
  }

  /** A row settled as generateRow leaves it: its image received into the spool, put in place, then its sidecar. */
  async function settleRow(store: OutputStore, batch: string, id: string, bytes: Buffer, finishedAt: string): Promise<void> {
    const writer = await store.imageSink(batch, id).open();
    await writer.write(bytes);
    const images = await store.commitImages(batch, id, [{ ...(await writer.close()), mimeType: 'image/png' }]);
    const [product, shot] = id.split('--');
    await store.writeSidecar(batch, id, { batch, id, status: 'done', prompt: id, parameters: { model: 'gemini-3-pro-image-preview', referenceImages: [] }, metadata: { product, shot }, images, costUsd: 0.134, timings: { finishedAt } });
    await store.tidyPartials(batch);
  }

  it('an image from 16 MB on goes up in parts, byte-identical; the temporary file is gone and nothing is left in the spool', async () => {
    const store = bucketStore('big');
    const bytes = Buffer.alloc(MULTIPART_FROM + 3 * 1024 * 1024 + 17);
    for (let i = 0; i < bytes.length; i += 4096) bytes.writeUInt32LE(i, i);
    await settleRow(store, 'huge', 'poster--wall', bytes, '2026-11-30T01:00:00.000Z');
    expect(sha256(await s3.read(BUCKET, 'big/huge/poster--wall.png'))).toBe(sha256(bytes));
    expect(existsSync(join(store.batchDir('huge'), '.partial'))).toBe(false);
  });

  it('manifests and latest/ in a bucket: read from the sidecar objects, the view made of server-side copies of the newest images', async () => {
    const store = bucketStore('catalog');
    await settleRow(store, 'shop/2026-11-29', 'mug--hero', Buffer.from('old mug'), '2026-11-29T01:00:00.000Z');
    await settleRow(store, 'shop/2026-11-29', 'cup--hero', Buffer.from('old cup'), '2026-11-29T01:00:00.000Z');
    await settleRow(store, 'shop/2026-11-30', 'mug--hero', Buffer.from('new mug'), '2026-11-30T01:00:00.000Z');

    const manifest = await writeManifest(store, 'shop/2026-11-29');
    expect(manifest).toMatchObject({ rows: 2, done: 2, csvPath: `s3://${BUCKET}/catalog/shop/2026-11-29/manifest.csv` });
    expect((await s3.read(BUCKET, 'catalog/shop/2026-11-29/manifest.csv')).toString()).toContain('mug,hero,shop/2026-11-29/mug--hero.png,done,');

    expect(await updateLatest(store, 'shop', 'shop/2026-11-30')).toMatchObject({ updated: 1, entries: 1, dir: `s3://${BUCKET}/catalog/latest/shop` });
    // The older firing's view updated late puts nothing older back.
    expect(await updateLatest(store, 'shop', 'shop/2026-11-29')).toMatchObject({ updated: 1, keptNewer: 1, entries: 2 });
    const view = (await s3.objects(BUCKET, 'catalog/latest/')).map((object) => object.key);
    expect(view).toEqual(['catalog/latest/shop/cup--hero.png', 'catalog/latest/shop/manifest.json', 'catalog/latest/shop/mug--hero.png']);
    expect((await s3.read(BUCKET, 'catalog/latest/shop/mug--hero.png')).toString()).toBe('new mug');
    expect((await s3.read(BUCKET, 'catalog/latest/shop/cup--hero.png')).toString()).toBe('old cup');
  });

  it('a bucket that cannot be used stops run before any row is sent; one gone mid-run stops it, every billed answer kept in the spool', async () => {
    const csv = join(dir, 'gone.csv');
    await writeFile(csv, ['id,prompt', ...Array.from({ length: 30 }, (_, i) => `g${i},"a vase, view ${i} [mock:latency=150]"`)].join('\n'));
    const spool = join(dir, 'spool-gone');
    const missing = await runInProcess(['run', csv, '--out', 's3://no-such-bucket/x', '--plain'], { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_SPOOL_DIR: spool, ...s3.env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot use the output bucket s3://no-such-bucket/x');
    expect((await mock.requests()).some((record) => record.prompt.startsWith('a vase'))).toBe(false);

    const own = await startS3Server(['thb-gone']);
    const env = { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_SPOOL_DIR: spool, ...own.env };
    const running = runInProcess(['run', csv, '--out', 's3://thb-gone/x', '--plain', '--concurrency', '2'], env);
    const deadline = Date.now() + 30_000;
    while ((await own.objects('thb-gone', 'x/gone/')).length < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    await own.stop();
    const result = await running;
    expect(result.code, result.stdout + result.stderr).toBe(2);
    expect(result.stderr).toMatch(/cannot (upload|read) s3:\/\/thb-gone\/x\/gone\/g\d+\.(jpg|json)/);
    // Stopped, not billing on: a few rows were asked, and every billed answer is in the spool's ledger.
    const billed = (await mock.requests()).filter((record) => record.prompt.startsWith('a vase') && record.status === 200);
    expect(billed.length).toBeLessThan(15);
    const ledgerDir = join(spool, 'thb-gone', 'x', 'ledger');
    const lines = (await Promise.all((await readdir(ledgerDir)).map((name) => readFile(join(ledgerDir, name), 'utf8')))).join('').split('\n').filter(Boolean);
    expect(lines).toHaveLength(billed.length);
  });
});
