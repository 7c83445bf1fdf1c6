/**
 * `tokenhot-batch demo`, as a first-time user runs it: the example catalog becomes images and a
 * report, and pointing `--out` at a folder of real outputs never deletes them.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInProcess } from './helpers/cli-in-process.js';


describe('demo', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'thb-demo-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('makes the example catalog and a report, starting afresh in a folder an earlier demo made', async () => {
    const out = join(dir, 'demo');
    // What an earlier demo leaves (its mark, a ledger, images): one demo run is enough to see it
    // emptied, instead of two.
    await mkdir(join(out, 'ledger'), { recursive: true });
    await mkdir(join(out, 'catalog'), { recursive: true });
    await writeFile(join(out, '.tokenhot-demo'), 'made by tokenhot-batch demo, which empties this folder each time it runs\n');
    await writeFile(join(out, 'ledger', 'earlier-demo.jsonl'), '{"line":"of an earlier demo"}\n');
    await writeFile(join(out, 'catalog', 'earlier-row.png'), 'an image of an earlier demo');

    const demo = await runInProcess(['demo', '--out', out, '--plain']);
    expect(demo.code, demo.stderr).toBe(0);
    expect(demo.stdout).toMatch(/total\s.*\$\d+\.\d{4}/i);
    const images = (await readdir(join(out, 'catalog'))).filter((name) => /\.(png|jpe?g|webp)$/.test(name));
    expect(images.length).toBeGreaterThanOrEqual(32);
    expect(images).not.toContain('earlier-row.png');
    // Both API families, side by side in the report.
    expect(demo.stdout).toMatch(/doubao-seedream-4-5-251128/);
    expect(demo.stdout).toMatch(/gpt-image-1\.5/);
    // One ledger file: the earlier demo's was removed with its folder, not added to.
    const ledgers = await readdir(join(out, 'ledger'));
    expect(ledgers).toHaveLength(1);
    expect(ledgers).not.toContain('earlier-demo.jsonl');
  });

  it('refuses to empty a folder it did not make, and leaves every file in it', async () => {
    const out = join(dir, 'real-outputs');
    await mkdir(join(out, 'ledger'), { recursive: true });
    await writeFile(join(out, 'ledger', 'billing.jsonl'), '{"line":"the only record of a bill"}\n');
    const demo = await runInProcess(['demo', '--out', out, '--plain']);
    expect(demo.code).toBe(2);
    expect(demo.stderr).toContain('holds files the demo did not make');
    expect(await readFile(join(out, 'ledger', 'billing.jsonl'), 'utf8')).toContain('the only record of a bill');
    expect(existsSync(join(out, 'catalog'))).toBe(false);
  });
});
