/**
 * The manifest and the latest/ view as a team's sync reads them: every row of a batch with its
 * product, shot, files, status, cost and photos, quoted for spreadsheets, written whole; the view
 * holds the newest image of each product and shot, keeps the older one when a row fails, follows
 * a change of type, and copies where it cannot link. In queue mode, two workers draining a batch
 * leave its manifest complete.
 */
import { link, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { updateLatest } from '../src/output/latest.js';
import { writeManifest, type ManifestEntry } from '../src/output/manifest.js';
import { OutputStore } from '../src/output/storage.js';
import { startCli } from './helpers/processes.js';
import { processes, setup, testFile, useQueueHarness, waitFor, worker } from './helpers/queue-harness.js';
import { runInProcess } from './helpers/cli-in-process.js';

/** /dev/shm on another file system than the test folders: links from one to the other fail. */
const shmDevice = (await stat('/dev/shm').catch(() => undefined))?.dev;
const shmElsewhere = shmDevice !== undefined && shmDevice !== (await stat(tmpdir())).dev;

let dir: string;
let store: OutputStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'thb-manifest-'));
  store = new OutputStore(dir, { durable: false });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface FakeRow {
  id: string;
  status?: 'done' | 'failed';
  reason?: string;
  images?: string[];
  costUsd?: number | null;
  metadata?: Record<string, string>;
  referenceImages?: string[];
  finishedAt?: string;
  model?: string;
}

/** A settled row as generateRow leaves it: its images (bytes naming the row) and its sidecar. */
async function settleRow(batch: string, row: FakeRow): Promise<void> {
  const images = row.images ?? (row.status === 'failed' ? [] : [`${row.id}.png`]);
  await mkdir(store.batchDir(batch), { recursive: true });
  for (const file of images) await writeFile(store.pathOf(batch, file), `${batch}/${file}`);
  await store.writeSidecar(batch, row.id, {
    batch,
    id: row.id,
    status: row.status ?? 'done',
    ...(row.reason ? { reason: row.reason } : {}),
    prompt: `prompt of ${row.id}`,
    // A feed's row sends the photos its metadata lists (all of them, as `references: all`).
    parameters: { model: row.model ?? 'gemini-3-pro-image-preview', referenceImages: row.referenceImages ?? row.metadata?.photos?.split(' ') ?? [] },
    tags: [],
    metadata: row.metadata ?? {},
    images: images.map((file) => ({ file, mimeType: file.endsWith('.jpg') ? 'image/jpeg' : 'image/png', bytes: 10 })),
    texts: [],
    costUsd: row.costUsd === undefined ? 0.134 : row.costUsd,
    attempt: 1,
    timings: { startedAt: '2026-11-30T01:00:00.000Z', finishedAt: row.finishedAt ?? '2026-11-30T01:00:05.000Z', durationMs: 5000 },
  });
  await store.tidyPartials(batch);
}

const shot = (product: string, name: string, photos = `https://shop.example/${product}.jpg`): Record<string, string> => ({ product, shot: name, feed_line: '2', photos });

/** Every file under `root`, hidden ones included, relative to it. */
async function allFiles(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(root.length + 1))
    .sort();
}

describe('manifest', () => {
  it('lists every row from its sidecar, sorted by product and shot, quoted for spreadsheets; the JSON says the same', async () => {
    const batch = 'nightly/2026-11-30';
    await settleRow(batch, { id: 'mug--hero', metadata: shot('mug', 'hero', 'https://shop.example/mug-1.jpg https://shop.example/mug-2.jpg'), costUsd: 0.134 });
    await settleRow(batch, { id: 'mug--banner', metadata: shot('mug', 'banner'), images: ['mug--banner.jpg', 'mug--banner-2.jpg'], costUsd: 0.000000123456 });
    await settleRow(batch, { id: 'cup--hero', status: 'failed', reason: 'prompt blocked (SAFETY): "a cup", with a comma\nand a line', metadata: shot('cup', 'hero'), costUsd: 0.0021 });
    await settleRow(batch, { id: 'cup--zoom', status: 'failed', reason: '=HYPERLINK("x")', metadata: shot('cup', 'zoom'), costUsd: 0 });
    await settleRow(batch, { id: 'plain-row', referenceImages: ['refs/a b.png', 'refs/c.png'], costUsd: null, model: 'gpt-image-2' });
    // Not a row's sidecar: left out.
    await writeFile(store.pathOf(batch, 'notes.json'), '{"id":"other","status":"done"}');

    const summary = await writeManifest(store, batch);
    expect(summary).toMatchObject({ batch, rows: 5, done: 3, failed: 2, unpriced: 1, warnings: [] });
    expect(summary.costUsd).toBe(0.136100123456);

    const csv = await readFile(join(dir, batch, 'manifest.csv'), 'utf8');
    expect(csv.split('\n')[0]).toBe('product,shot,file,status,reason,model,cost_usd,source_photos,row_id,finished_at');
    expect(csv).toBe(
      [
        'product,shot,file,status,reason,model,cost_usd,source_photos,row_id,finished_at',
        'cup,hero,,failed,"prompt blocked (SAFETY): ""a cup"", with a comma\nand a line",gemini-3-pro-image-preview,0.0021,https://shop.example/cup.jpg,cup--hero,2026-11-30T01:00:05.000Z',
        `cup,zoom,,failed,"'=HYPERLINK(""x"")",gemini-3-pro-image-preview,0,https://shop.example/cup.jpg,cup--zoom,2026-11-30T01:00:05.000Z`,
        'mug,banner,nightly/2026-11-30/mug--banner.jpg;nightly/2026-11-30/mug--banner-2.jpg,done,,gemini-3-pro-image-preview,0.000000123456,https://shop.example/mug.jpg,mug--banner,2026-11-30T01:00:05.000Z',
        'mug,hero,nightly/2026-11-30/mug--hero.png,done,,gemini-3-pro-image-preview,0.134,https://shop.example/mug-1.jpg;https://shop.example/mug-2.jpg,mug--hero,2026-11-30T01:00:05.000Z',
        'plain-row,,nightly/2026-11-30/plain-row.png,done,,gpt-image-2,,refs/a b.png;refs/c.png,plain-row,2026-11-30T01:00:05.000Z',
        '',
      ].join('\n'),
    );

    const json = JSON.parse(await readFile(join(dir, batch, 'manifest.json'), 'utf8')) as { batch: string; rows: ManifestEntry[] };
    expect(json.batch).toBe(batch);
    expect(json.rows.map((row) => row.rowId)).toEqual(['cup--hero', 'cup--zoom', 'mug--banner', 'mug--hero', 'plain-row']);
    expect(json.rows[2]).toEqual({
      product: 'mug',
      shot: 'banner',
      files: ['nightly/2026-11-30/mug--banner.jpg', 'nightly/2026-11-30/mug--banner-2.jpg'],
      status: 'done',
      reason: '',
      model: 'gemini-3-pro-image-preview',
      costUsd: 0.000000123456,
      photos: ['https://shop.example/mug.jpg'],
      rowId: 'mug--banner',
      finishedAt: '2026-11-30T01:00:05.000Z',
    });
    expect(json.rows[4]).toMatchObject({ product: 'plain-row', shot: '', costUsd: null, photos: ['refs/a b.png', 'refs/c.png'] });
    // Every file listed is there, relative to the output folder.
    for (const row of json.rows) for (const file of row.files) expect(await readFile(join(dir, file), 'utf8')).toBe(file);

    // Written again: the same rows (its own manifest.json is not read as a row), no temporary file left.
    expect(await writeManifest(store, batch)).toMatchObject({ rows: 5 });
    expect((await allFiles(join(dir, batch))).filter((file) => !/^[a-z-]+(-2)?\.(png|jpg|json)$/.test(file))).toEqual(['manifest.csv']);
  });

  it('a row named "manifest" keeps its sidecar: the batch gets manifest.csv only, with a warning', async () => {
    await settleRow('odd', { id: 'manifest' });
    await settleRow('odd', { id: 'other' });
    const summary = await writeManifest(store, 'odd');
    expect(summary.jsonPath).toBeUndefined();
    expect(summary.warnings[0]).toMatch(/row "manifest" has its sidecar at odd\/manifest.json/);
    expect(JSON.parse(await readFile(join(dir, 'odd', 'manifest.json'), 'utf8'))).toMatchObject({ id: 'manifest', status: 'done' });
    expect((await readFile(join(dir, 'odd', 'manifest.csv'), 'utf8')).split('\n')).toHaveLength(4);
  });

  it('a batch with no folder gets an empty manifest', async () => {
    expect(await writeManifest(store, 'empty')).toMatchObject({ rows: 0, costUsd: 0 });
    expect(await readFile(join(dir, 'empty', 'manifest.csv'), 'utf8')).toBe('product,shot,file,status,reason,model,cost_usd,source_photos,row_id,finished_at\n');
  });

  it('reads a batch of 2,000 sidecars a few at a time', async () => {
    const batch = 'big';
    await mkdir(join(dir, batch));
    // Written directly: 2,000 sidecars through the store take a while on a busy machine.
    await Promise.all(
      Array.from({ length: 2000 }, (_, i) =>
        writeFile(join(dir, batch, `p${i}.json`), JSON.stringify({ id: `p${i}`, status: 'done', parameters: { model: 'm', referenceImages: [] }, metadata: {}, images: [{ file: `p${i}.png` }], costUsd: 0.039, timings: { finishedAt: '2026-11-30T01:00:00.000Z' } })),
      ),
    );
    const summary = await writeManifest(store, batch);
    expect(summary).toMatchObject({ rows: 2000, done: 2000 });
    expect(summary.costUsd).toBe(78);
  });
});

describe('latest/', () => {
  const job = 'shop';
  const older = 'shop/2026-11-29';
  const newer = 'shop/2026-11-30';

  it('holds the newest image of each product and shot as links; a failed row keeps the older image; a new type replaces the old file', async () => {
    await settleRow(older, { id: 'mug--hero', metadata: shot('mug', 'hero'), finishedAt: '2026-11-29T01:00:00.000Z' });
    await settleRow(older, { id: 'cup--hero', metadata: shot('cup', 'hero'), finishedAt: '2026-11-29T01:00:00.000Z' });
    await settleRow(older, { id: 'plain', finishedAt: '2026-11-29T01:00:00.000Z' });
    expect(await updateLatest(store, job, older)).toMatchObject({ updated: 3, copied: 0, entries: 3 });

    await settleRow(newer, { id: 'mug--hero', metadata: shot('mug', 'hero'), images: ['mug--hero.jpg'], finishedAt: '2026-11-30T01:00:00.000Z' });
    await settleRow(newer, { id: 'cup--hero', status: 'failed', reason: 'prompt blocked', metadata: shot('cup', 'hero'), finishedAt: '2026-11-30T01:00:00.000Z' });
    expect(await updateLatest(store, job, newer)).toMatchObject({ updated: 1, entries: 3 });

    const view = join(dir, 'latest', job);
    expect(await allFiles(view)).toEqual(['cup--hero.png', 'manifest.json', 'mug--hero.jpg', 'plain.png']);
    expect(await readFile(join(view, 'mug--hero.jpg'), 'utf8')).toBe(`${newer}/mug--hero.jpg`);
    expect(await readFile(join(view, 'cup--hero.png'), 'utf8')).toBe(`${older}/cup--hero.png`);
    // Links: the view's file is the batch's file.
    expect((await stat(join(view, 'mug--hero.jpg'))).ino).toBe((await stat(join(dir, newer, 'mug--hero.jpg'))).ino);

    // The older firing's view updated late puts nothing older back.
    expect(await updateLatest(store, job, older)).toMatchObject({ updated: 0, unchanged: 2, keptNewer: 1 });
    expect(await allFiles(view)).toEqual(['cup--hero.png', 'manifest.json', 'mug--hero.jpg', 'plain.png']);
    // Done again: nothing to link, no temporary file left.
    expect(await updateLatest(store, job, newer)).toMatchObject({ updated: 0, unchanged: 1 });
    expect(await allFiles(view)).toEqual(['cup--hero.png', 'manifest.json', 'mug--hero.jpg', 'plain.png']);

    const manifest = JSON.parse(await readFile(join(view, 'manifest.json'), 'utf8')) as { job: string; entries: { product: string; shot: string; files: string[]; batch: string; sources: string[] }[] };
    expect(manifest.job).toBe(job);
    expect(manifest.entries.map((entry) => [entry.product, entry.shot, entry.files, entry.batch, entry.sources])).toEqual([
      ['cup', 'hero', ['cup--hero.png'], older, [`${older}/cup--hero.png`]],
      ['mug', 'hero', ['mug--hero.jpg'], newer, [`${newer}/mug--hero.jpg`]],
      ['plain', '', ['plain.png'], older, [`${older}/plain.png`]],
    ]);
  });

  it('replaces a file the view holds as another link of the same name (a row made again in its batch)', async () => {
    await settleRow(older, { id: 'mug--hero', metadata: shot('mug', 'hero'), finishedAt: '2026-11-29T01:00:00.000Z' });
    await updateLatest(store, job, older);
    // The row made again in the same batch: a new file at the same path, a later finish.
    await rm(join(dir, older, 'mug--hero.png'));
    await settleRow(older, { id: 'mug--hero', metadata: shot('mug', 'hero'), finishedAt: '2026-11-29T02:00:00.000Z' });
    await writeFile(join(dir, older, 'mug--hero.png'), 'made again');
    await updateLatest(store, job, older);
    expect(await readFile(join(dir, 'latest', job, 'mug--hero.png'), 'utf8')).toBe('made again');
    // A name the view cannot take.
    await expect(updateLatest(store, 'a/b', older)).rejects.toThrow(/one name/);
  });

  it.skipIf(!shmElsewhere)('copies where the file system refuses links (the view on another file system)', async () => {
    const elsewhere = await mkdtemp('/dev/shm/thb-latest-');
    try {
      await symlink(elsewhere, join(dir, 'latest'));
      await settleRow(older, { id: 'mug--hero', metadata: shot('mug', 'hero') });
      // Proof that this is another file system: a link from here to there fails.
      await expect(link(join(dir, older, 'mug--hero.png'), join(elsewhere, 'probe'))).rejects.toMatchObject({ code: 'EXDEV' });
      expect(await updateLatest(store, job, older)).toMatchObject({ updated: 1, copied: 1 });
      expect(await readFile(join(elsewhere, job, 'mug--hero.png'), 'utf8')).toBe(`${older}/mug--hero.png`);
      expect(await allFiles(join(elsewhere, job))).toEqual(['manifest.json', 'mug--hero.png']);
    } finally {
      await rm(elsewhere, { recursive: true, force: true });
    }
  });
});

describe('manifest in queue mode', () => {
  useQueueHarness();

  it('two workers drain a batch: manifest.csv and manifest.json list every row, the blocked one failed with its reason', async () => {
    const { env, out } = await setup('manifest');
    const csv = testFile('manifest-rows.csv');
    const products = ['mug', 'cup', 'vase'];
    const lines = ['id,prompt,model,product,shot,photos'];
    for (const product of products) {
      for (const name of ['hero', 'banner']) {
        const blocked = product === 'cup' && name === 'banner' ? ' [mock:blocked]' : '';
        const two = product === 'vase' && name === 'hero' ? ' [mock:two-images]' : '';
        lines.push(`${product}--${name},"a ${product}, ${name} shot${blocked}${two}",gemini-3.1-flash-image-preview,${product},${name},https://shop.example/${product}.jpg`);
      }
    }
    await writeFile(csv, `${lines.join('\n')}\n`);
    const enqueued = await runInProcess(['enqueue', csv, '--batch', 'shop/queue', '--plain'], env);
    expect(enqueued.code, enqueued.stderr).toBe(0);

    const workers = [worker(env, ['--no-catalog', '--plain', '--concurrency', '2']), worker(env, ['--no-catalog', '--plain', '--concurrency', '2'])];
    const results = await Promise.all(workers.map((process) => process.done));
    for (const result of results) expect([0, 1], result.stderr).toContain(result.code);

    const json = JSON.parse(await readFile(join(out, 'shop/queue', 'manifest.json'), 'utf8')) as { rows: ManifestEntry[] };
    expect(json.rows.map((row) => `${row.product}/${row.shot}/${row.status}`)).toEqual([
      'cup/banner/failed',
      'cup/hero/done',
      'mug/banner/done',
      'mug/hero/done',
      'vase/banner/done',
      'vase/hero/done',
    ]);
    expect(json.rows[0]!.reason).toMatch(/prompt blocked/);
    expect(json.rows.find((row) => row.rowId === 'vase--hero')!.files).toHaveLength(2);
    for (const row of json.rows) {
      const sidecar = JSON.parse(await readFile(join(out, 'shop/queue', `${row.rowId}.json`), 'utf8')) as { costUsd: number };
      expect(row.costUsd, row.rowId).toBe(sidecar.costUsd);
      // The rows sent no reference images: the product's photo column is metadata, not what was sent.
      expect(row.photos).toEqual([]);
      for (const file of row.files) expect((await stat(join(out, file))).size).toBeGreaterThan(0);
    }
    const csvLines = (await readFile(join(out, 'shop/queue', 'manifest.csv'), 'utf8')).trimEnd().split('\n');
    expect(csvLines).toHaveLength(7);
    expect(csvLines[1]).toMatch(/^cup,banner,,failed,"?prompt blocked/);
    expect((await readdir(join(out, 'shop/queue'))).filter((name) => name.startsWith('.'))).toEqual([]);
  });

  it('catalog firings: each batch gets its manifest, latest/ holds the newest image of each row', async () => {
    const { env, out } = await setup('latest');
    const folder = testFile('latest-jobs');
    await mkdir(folder, { recursive: true });
    const rows = (changed: string) => ['id,prompt', `mug,"a mug on white${changed}"`, 'cup,"a cup on white"', 'vase,"a vase on white [mock:blocked]"'].join('\n');
    await writeFile(join(folder, 'rows.csv'), rows(''));
    await writeFile(join(folder, 'nightly.yaml'), 'name: nightly\ncsv: rows.csv\nschedule: { every: 1h }\nbatch: "{name}/{date}-{time}"\ndefaults: { model: gemini-2.5-flash-image }\n');
    expect((await runInProcess(['schedule', 'sync', folder], env)).code).toBe(0);
    const work = startCli(['work', '--concurrency', '2', '--plain'], env);
    processes.push(work);
    const view = join(out, 'latest', 'nightly');
    const latest = async (): Promise<{ rowId: string; batch: string }[]> =>
      ((JSON.parse(await readFile(join(view, 'manifest.json'), 'utf8').catch(() => '{"entries":[]}')) as { entries: { rowId: string; batch: string }[] }).entries);

    expect((await runInProcess(['schedule', 'run', 'nightly'], env)).code).toBe(0);
    await waitFor('the first firing in latest/', async () => (await latest()).length === 2);
    const first = (await latest())[0]!.batch;
    expect((await readdir(view)).sort()).toEqual(['cup.png', 'manifest.json', 'mug.png']);
    const manifest = JSON.parse(await readFile(join(out, first, 'manifest.json'), 'utf8')) as { rows: ManifestEntry[] };
    expect(manifest.rows.map((row) => `${row.rowId}:${row.status}`)).toEqual(['cup:done', 'mug:done', 'vase:failed']);

    // The next firing makes the changed row (and the failed one) again: mug comes from it, cup stays.
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // batch names carry the time to the second
    await writeFile(join(folder, 'rows.csv'), rows(', changed'));
    expect((await runInProcess(['schedule', 'run', 'nightly'], env)).code).toBe(0);
    await waitFor('the second firing in latest/', async () => (await latest()).some((entry) => entry.batch !== first));
    const second = (await latest()).find((entry) => entry.batch !== first)!.batch;
    expect((await latest()).map((entry) => `${entry.rowId}:${entry.batch === first ? 'first' : 'second'}`)).toEqual(['cup:first', 'mug:second']);
    expect((await stat(join(view, 'mug.png'))).ino).toBe((await stat(join(out, second, 'mug.png'))).ino);
    const secondManifest = JSON.parse(await readFile(join(out, second, 'manifest.json'), 'utf8')) as { rows: ManifestEntry[] };
    expect(secondManifest.rows.map((row) => `${row.rowId}:${row.status}`)).toEqual(['mug:done', 'vase:failed']);
    work.child.kill('SIGTERM');
    await work.done;
  });

  it('enqueue --job: the worker that settles the batch updates the job\'s latest/ view too', async () => {
    const { env, out } = await setup('job-latest');
    const folder = testFile('job-latest');
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, 'feed.csv'), 'sku,title\nA1,Mug\nA2,Bowl\n');
    await writeFile(join(folder, 'shop.yaml'), 'name: shop\nfeed: feed.csv\nformat: plain\nid: "{{sku}}"\nprompt: "{{title}} on white"\ndefaults: { model: gemini-2.5-flash-image }\n');
    const enqueued = await runInProcess(['enqueue', '--job', join(folder, 'shop.yaml'), '--batch', 'manual', '--plain'], env);
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const result = await worker(env, ['--no-catalog', '--plain']).done;
    expect(result.code, result.stderr).toBe(0);
    const view = JSON.parse(await readFile(join(out, 'latest', 'shop', 'manifest.json'), 'utf8')) as { entries: { rowId: string; batch: string }[] };
    expect(view.entries.map((entry) => `${entry.rowId}@${entry.batch}`)).toEqual(['A1@manual', 'A2@manual']);
  });
});
