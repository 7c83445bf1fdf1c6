/**
 * Product photos named by URL: fetched once into `<out>/.cache/photos`, asked again with the
 * ETag (a 304 costs no bytes), fetched anew when the shop replaced the photo, sent as the row's
 * reference images; a photo that is gone fails its rows with the reason while the rest go on.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PhotoCache } from '../src/rows/photo-cache.js';
import { FileHashes, rowContentHash } from '../src/rows/content-hash.js';
import type { PhotoRequestRecord } from '../src/mock/photos.js';
import type { Row } from '../src/core/types.js';
import { startMockProcess, type MockProcess } from './helpers/processes.js';
import { runInProcess } from './helpers/cli-in-process.js';

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('photos by URL', () => {
  let mock: MockProcess;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'thb-photos-'));
    mock = await startMockProcess(['--api-key', 'k']);
  });
  afterAll(async () => {
    await mock.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const photoRequests = async (name: string): Promise<PhotoRequestRecord[]> =>
    ((await (await fetch(`${mock.url}/__mock/photo-requests`)).json()) as PhotoRequestRecord[]).filter((record) => record.path === `/photos/${name}`);

  it('fetched once, revalidated with its ETag, fetched anew once replaced; its content makes the row hash', async () => {
    const cacheDir = join(dir, 'cache');
    const url = `${mock.url}/photos/mug-1.jpg`;
    const first = new PhotoCache(cacheDir);
    const got = await first.get(url);
    expect(got.ok).toBe(true);
    if (!got.ok) return;
    const served = Buffer.from(await (await fetch(url)).arrayBuffer());
    expect(sha256(await readFile(got.photo.path))).toBe(sha256(served));
    expect(got.photo).toMatchObject({ mime: 'image/jpeg', bytes: served.length, sha256: sha256(served) });
    // The same process asks once however many rows name it.
    await Promise.all([first.get(url), first.get(url)]);
    await first.close();

    // A later firing asks whether it changed: 304, nothing downloaded, the same copy.
    const second = new PhotoCache(cacheDir);
    const again = await second.get(url);
    await second.close();
    expect(again.ok && again.photo.sha256).toBe(sha256(served));
    expect((await photoRequests('mug-1.jpg')).map((r) => [r.status, r.conditional])).toEqual([
      [200, false],
      [200, false], // the test's own fetch
      [304, true],
    ]);

    const row: Row = { id: 'mug', line: 2, prompt: 'a mug', model: 'gemini-2.5-flash-image', referenceImages: [url], tags: [], metadata: {} };
    const hashBefore = await rowContentHash(row, new FileHashes(new PhotoCache(cacheDir).contentHash));

    // The shop replaces the photo: the next look downloads it, and the row's hash changes.
    await fetch(`${mock.url}/__mock/photos/mug-1.jpg`, { method: 'POST' });
    const third = new PhotoCache(cacheDir);
    const replaced = await third.get(url);
    expect(replaced.ok && replaced.photo.sha256).not.toBe(sha256(served));
    expect(await rowContentHash(row, new FileHashes(third.contentHash))).not.toBe(hashBefore);
    await third.close();
    expect((await readdir(cacheDir)).filter((name) => name.endsWith('.partial'))).toEqual([]);
  });

  it('run: photos sent as reference images, one download per photo however many rows; a photo gone fails its row, the rest go on', async () => {
    const csv = join(dir, 'photos.csv');
    const photo = (name: string) => `${mock.url}/photos/${name}`;
    await writeFile(
      csv,
      [
        'id,prompt,model,reference_images',
        `hero,"the lamp on white",gemini-3.1-flash-image-preview,${photo('lamp-1.jpg')}`,
        `scene,"the lamp in a room",doubao-seedream-4-5-251128,"${photo('lamp-1.jpg')};${photo('lamp-2.jpg')}"`,
        `banner,"the lamp, wide",gemini-3.1-flash-image-preview,${photo('lamp-2.jpg')}`,
        `gone,"a vase",gemini-3.1-flash-image-preview,${photo('missing-vase.jpg')}`,
      ].join('\n'),
    );
    const out = join(dir, 'out');
    const result = await runInProcess(['run', csv, '--out', out, '--plain'], { TOKENHOT_API_KEY: 'k', TOKENHOT_BASE_URL: mock.url });
    expect(result.stdout + result.stderr).toContain('3 done');
    expect(result.stdout + result.stderr).toMatch(/photos\.csv:5: reference_images: "http:\/\/[^"]+\/photos\/missing-vase\.jpg" cannot be fetched: photo [^ ]+\/photos\/missing-vase\.jpg has expired or is gone \(HTTP 404\)/);
    expect(result.code).toBe(1);
    // Each photo downloaded once, however many rows name it.
    for (const name of ['lamp-1.jpg', 'lamp-2.jpg']) expect((await photoRequests(name)).filter((r) => r.status === 200), name).toHaveLength(1);
    // Sent as reference images: the mock saw them in each request.
    const records = await mock.requests();
    expect(records.find((r) => r.prompt === 'the lamp in a room')).toMatchObject({ status: 200 });
    // The sidecar keeps the URLs the row named, not the cache's paths.
    const sidecar = JSON.parse(await readFile(join(out, 'photos', 'scene.json'), 'utf8')) as { row?: { referenceImages?: string[] }; referenceImages?: string[] };
    expect(JSON.stringify(sidecar)).toContain(photo('lamp-2.jpg'));
    expect(JSON.stringify(sidecar)).not.toContain('.cache');
  });
});
