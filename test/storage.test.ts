/**
 * The output folder as a user sees it: a row made again leaves only its new images, two
 * in-process runs of one batch cannot run at once, and two workers writing one batch's rows at
 * once never fail a row on the batch's shared temporary folder.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readdir, readFile, mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import type { FinalImage } from '../src/providers/provider.js';
import { OutputStore } from '../src/output/storage.js';
import { ROOT } from './helpers/root.js';

let dir: string;
let store: OutputStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'thb-storage-'));
  store = new OutputStore(dir, { durable: false });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Images as a provider leaves them: temporary files in the batch's `.partial/` folder. */
async function received(batch: string, rowId: string, mimeTypes: string[]): Promise<FinalImage[]> {
  const sink = store.imageSink(batch, rowId);
  const images: FinalImage[] = [];
  for (const mimeType of mimeTypes) {
    const writer = await sink.open();
    await writer.write(Buffer.from(`bytes of a ${mimeType} image`));
    images.push({ ...(await writer.close()), mimeType });
  }
  return images;
}

async function makeRow(batch: string, rowId: string, mimeTypes: string[]): Promise<void> {
  const images = await store.commitImages(batch, rowId, await received(batch, rowId, mimeTypes));
  await store.writeSidecar(batch, rowId, { status: 'done', images });
  await store.tidyPartials(batch);
}

describe('output folder', () => {
  it('a row made again keeps only its new images: no stale JPEG beside a new PNG, no stale second image', async () => {
    await makeRow('cat', 'sku1', ['image/jpeg', 'image/jpeg']);
    await makeRow('cat', 'sku10', ['image/jpeg']);
    expect((await readdir(join(dir, 'cat'))).sort()).toEqual(['sku1-2.jpg', 'sku1.jpg', 'sku1.json', 'sku10.jpg', 'sku10.json']);
    await makeRow('cat', 'sku1', ['image/png']);
    // Row sku10 is untouched although its id starts with sku1.
    expect((await readdir(join(dir, 'cat'))).sort()).toEqual(['sku1.json', 'sku1.png', 'sku10.jpg', 'sku10.json']);
  });

  it('one in-process run of a batch at a time; a lock left by a process that is gone is taken over', async () => {
    const first = await store.lockBatch('nightly');
    await expect(store.lockBatch('nightly')).rejects.toThrow(/batch nightly is being run by process \d+ on .* since .*; wait for it to end, or remove .*\.run-lock/);
    const other = await store.lockBatch('other');
    await other.release();
    await first.release();
    const again = await store.lockBatch('nightly');
    await again.release();

    // A run killed with SIGKILL leaves its lock; its process is gone.
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    await mkdir(join(dir, 'nightly'), { recursive: true });
    await writeFile(join(dir, 'nightly', '.run-lock'), JSON.stringify({ host: hostname(), pid: Number(gone.stdout), since: '2026-11-29T00:00:00Z' }));
    const takenOver = await store.lockBatch('nightly');
    await takenOver.release();
    // Nothing was made: no lock and no empty batch folder stay behind.
    expect(existsSync(join(dir, 'nightly'))).toBe(false);
  });

  it('takes over the lock of a killed run whose parent has not reaped it yet (a zombie)', async () => {
    // The shell becomes `sleep 30` (exec) well before its child `sleep 0.3` exits, so nothing
    // reaps the child. (With `sleep 0` the shell could reap it before the exec, and did on CI.)
    const parent = spawn('sh', ['-c', 'sleep 0.3 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const [pid] = (await once(parent.stdout!, 'data')) as [Buffer];
      const zombie = Number(pid.toString().trim());
      await expect.poll(() => readFile(`/proc/${zombie}/stat`, 'utf8').then((stat) => stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)), { timeout: 5000 }).toBe('Z');
      // `kill(pid, 0)` still finds it: the old check called the lock held.
      expect(() => process.kill(zombie, 0)).not.toThrow();
      await mkdir(join(dir, 'z'), { recursive: true });
      await writeFile(join(dir, 'z', '.run-lock'), JSON.stringify({ host: hostname(), pid: zombie, since: '2026-11-29T00:00:00Z' }));
      const takenOver = await store.lockBatch('z');
      await takenOver.release();
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('two workers saving rows of one batch at once: no row fails because the other removed the temporary folder', async () => {
    // Each settled row removes the batch's `.partial/` folder when it is empty, while rows of the
    // other process are making it again: a lost race failed the save of a billed answer, and
    // the row was asked (and billed) again. Two processes, as two workers are.
    const storage = join(ROOT, dirname(inject('cliEntry')), '..', 'output', 'storage.js');
    const script = `
      const { OutputStore } = await import(${JSON.stringify(pathToFileURL(storage).href)});
      const store = new OutputStore(process.argv[1], { durable: false });
      const png = Buffer.from('89504e470d0a1a0a', 'hex');
      let failed = 0;
      const row = async (id) => {
        try {
          const writer = await store.imageSink('b', id).open();
          await writer.write(png);
          const images = await store.commitImages('b', id, [{ ...(await writer.close()), mimeType: 'image/png' }]);
          await store.writeSidecar('b', id, { status: 'done', images });
          await store.tidyPartials('b');
        } catch (error) {
          failed++;
          console.error(error.message);
        }
      };
      for (let round = 0; round < 400; round++) await Promise.all([0, 1, 2].map((i) => row(process.argv[2] + '-' + round + '-' + i)));
      console.log(failed);
    `;
    const runs = ['w1', 'w2'].map((tag) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script, dir, tag], { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (data: Buffer) => (output += data.toString()));
      child.stderr.on('data', (data: Buffer) => (output += data.toString()));
      return once(child, 'exit').then(([code]) => ({ code: code as number, output }));
    });
    for (const run of await Promise.all(runs)) expect(run, run.output).toEqual({ code: 0, output: '0\n' });
    expect((await readdir(join(dir, 'b'))).filter((file) => file.endsWith('.json'))).toHaveLength(2 * 400 * 3);
  });
});
