/**
 * `--job FILE` on estimate, run and enqueue: a feed job priced before anything is sent (every
 * active product × every shot), and the mistakes a user makes with it named plainly (exit 2).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runInProcess } from './helpers/cli-in-process.js';
import { ROOT, startMockProcess, type MockProcess } from './helpers/processes.js';
import { appendReview } from '../src/output/reviews.js';

const JOB = join(ROOT, 'jobs/shopify-nightly.yaml');

describe('--job', () => {
  let dir: string;
  let mock: MockProcess;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'thb-job-input-'));
    mock = await startMockProcess(['--api-key', 'k']);
  });
  afterAll(async () => {
    await mock?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await mock.reset();
  });

  it('estimate --job: the feed × shots, per model, before anything is sent (29 active products × 3 shots)', async () => {
    const result = await runInProcess(['estimate', '--job', JOB, '--format', 'json'], { TOKENHOT_OUT_DIR: join(dir, 'out') });
    expect(result.code, result.stderr).toBe(0);
    const estimate = JSON.parse(result.stdout) as { rows: number; costUsd: number; lines: { model: string; rows: number }[] };
    expect(estimate.rows).toBe(87);
    expect(Object.fromEntries(estimate.lines.map((line) => [line.model, line.rows]))).toEqual({ 'gemini-3.1-flash-image-preview': 29, 'doubao-seedream-4-5-251128': 29, 'gpt-image-1.5': 29 });
    // Seedream 4.5 at $0.04 an image is a known part of it.
    expect(estimate.costUsd).toBeGreaterThan(29 * 0.04);
  });

  it('a CSV and --job together, neither, a job file that does not parse, a template naming a missing column: exit 2, named', async () => {
    const both = await runInProcess(['estimate', 'prompts.csv', '--job', JOB]);
    expect([both.code, both.stderr]).toEqual([2, expect.stringContaining('give a CSV file or --job, not both')]);
    const neither = await runInProcess(['run']);
    expect([neither.code, neither.stderr]).toEqual([2, expect.stringContaining('give a CSV file, or a job definition with --job FILE')]);

    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'name: bad\nfeed: feed.csv\nschedule: { every: 1h }\nshots: [{ name: hero }]\n');
    const unparsed = await runInProcess(['estimate', '--job', bad]);
    expect(unparsed.code).toBe(2);
    expect(unparsed.stderr).toContain(`${bad}: format: a feed needs its format: shopify, merchant or plain`);

    await writeFile(join(dir, 'feed.csv'), 'sku,title\nA1,Mug\n');
    const missing = join(dir, 'missing.yaml');
    await writeFile(missing, 'name: missing\nfeed: feed.csv\nformat: plain\nid: "{{sku}}"\nprompt: "{{title}} in {{Colour}}"\nschedule: { every: 1h }\n');
    const result = await runInProcess(['run', '--job', missing], { TOKENHOT_API_KEY: 'k', TOKENHOT_BASE_URL: 'http://127.0.0.1:9', TOKENHOT_OUT_DIR: join(dir, 'out') });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${missing}: prompt: "{{title}} in {{Colour}}" names the column "Colour", which the feed ${join(dir, 'feed.csv')} lacks; its columns: sku, title`);
  });

  it('deliver: approved: a run hands out nothing yet; after two approvals, deliver --approved writes those two to the manifest and latest/', async () => {
    await writeFile(join(dir, 'shop.csv'), 'sku,title\nA1,Mug\nA2,Bowl\nA3,Vase\n');
    const job = join(dir, 'shop.yaml');
    await writeFile(job, 'name: shop\nfeed: shop.csv\nformat: plain\nid: "{{sku}}"\nprompt: "{{title}} on white"\ndeliver: approved\ndefaults: { model: gemini-2.5-flash-image }\n');
    const out = join(dir, 'deliver-out');
    const env = { TOKENHOT_API_KEY: 'k', TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: out };
    const run = await runInProcess(['run', '--job', job, '--plain'], env);
    expect(run.code, run.stderr).toBe(0);
    const manifest = async (): Promise<string[]> => ((JSON.parse(await readFile(join(out, 'shop', 'manifest.json'), 'utf8')) as { rows: { rowId: string }[] }).rows.map((row) => row.rowId));
    expect(await manifest()).toEqual([]);

    await appendReview(out, 'shop', { rowId: 'A1', decision: 'approved', who: 'ana' });
    await appendReview(out, 'shop', { rowId: 'A3', decision: 'approved', who: 'ana' });
    await appendReview(out, 'shop', { rowId: 'A2', decision: 'rejected', note: 'the handle is missing', who: 'ana' });
    const delivered = await runInProcess(['deliver', '--batch', 'shop', '--job', 'shop', '--approved'], env);
    expect(delivered.code, delivered.stderr).toBe(0);
    expect(await manifest()).toEqual(['A1', 'A3']);
    expect((await readdir(join(out, 'latest', 'shop'))).sort()).toEqual(['A1.png', 'A3.png', 'manifest.json']);

    // A1 made again (its title changed): its approval was of the old image; the new one is unreviewed, not handed out.
    await writeFile(join(dir, 'shop.csv'), 'sku,title\nA1,Mug in blue\nA2,Bowl\nA3,Vase\n');
    const again = await runInProcess(['run', '--job', job, '--plain', '--redo-changed'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(await manifest()).toEqual(['A3']);
    const listed = await runInProcess(['review', 'list', '--out', out, '--batch', 'shop', '--unreviewed', '--format', 'json'], env);
    expect(listed.stdout).toContain('"A1"');
  });

  it("out: run --job writes where the job says, not TOKENHOT_OUT_DIR; --out wins over it; a bad out is named with the file and field", async () => {
    await writeFile(join(dir, 'cups.csv'), 'sku,title\nC1,Cup\nC2,Saucer\n');
    const job = join(dir, 'cups.yaml');
    await writeFile(job, 'name: cups\nfeed: cups.csv\nformat: plain\nid: "{{sku}}"\nprompt: "{{title}} on white"\nout: cups-out\ndefaults: { model: gemini-2.5-flash-image }\n');
    const env = { TOKENHOT_API_KEY: 'k', TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: join(dir, 'env-out') };
    const run = await runInProcess(['run', '--job', job, '--plain'], env);
    expect(run.code, run.stderr).toBe(0);
    // Relative to the definition file, as its feed is.
    expect((await readdir(join(dir, 'cups-out', 'cups'))).sort()).toEqual(['C1.json', 'C1.png', 'C2.json', 'C2.png', 'manifest.csv', 'manifest.json']);
    expect(await readdir(join(dir, 'cups-out', 'ledger'))).toHaveLength(1);
    expect(existsSync(join(dir, 'env-out'))).toBe(false);

    const flagOut = join(dir, 'flag-out');
    const flagged = await runInProcess(['run', '--job', job, '--plain', '--out', flagOut], env);
    expect(flagged.code, flagged.stderr).toBe(0);
    expect(existsSync(join(flagOut, 'cups', 'C1.png'))).toBe(true);
    expect(await mock.requests()).toHaveLength(4);

    const bad = join(dir, 'bad-out.yaml');
    await writeFile(bad, 'name: bad-out\ncsv: cups.csv\nout: ftp://files.example/cups\n');
    const refused = await runInProcess(['run', '--job', bad], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${bad}: out: output "ftp://files.example/cups": only s3:// URLs are supported`);
    await writeFile(bad, 'name: bad-out\ncsv: cups.csv\nout: ~/images\n');
    const tilde = await runInProcess(['run', '--job', bad], env);
    expect([tilde.code, tilde.stderr]).toEqual([2, expect.stringContaining(`${bad}: out: "~/images": a leading ~ is not expanded here`)]);
    // Reviews are kept in folders: a job handing out only approved images cannot write to a bucket.
    await writeFile(bad, 'name: bad-out\ncsv: cups.csv\ndeliver: approved\nout: s3://shop-images/cups\n');
    const approved = await runInProcess(['run', '--job', bad], env);
    expect([approved.code, approved.stderr]).toEqual([2, expect.stringContaining(`${bad}: out: deliver: approved needs a folder output (reviews are kept in folders)`)]);
  });
});
