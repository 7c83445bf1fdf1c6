/**
 * Queue mode with outputs in a bucket: two `work` processes with separate, empty spool folders
 * (two machines that share no disk) and one bucket on a real S3-compatible server (s3rver in its
 * own process). One worker is SIGKILLed midway and started again on its spool: every image is in
 * the bucket, byte-identical; the ledger reaches the bucket whole (what the killed worker left is
 * shipped by its successor); `report` from the bucket equals the mock's bill; no partial object.
 */
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerEntry } from '../src/core/types.js';
import { runInProcess } from './helpers/cli-in-process.js';
import { mockBill, usd } from './helpers/mock-bill.js';
import { billed, MODELS, setup, sha256, sleep, waitFor, worker, writeCsv, useQueueHarness } from './helpers/queue-harness.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';

useQueueHarness();

const BUCKET = 'thb-queue';
const PREFIX = 'catalog';
const SETTLED_KEY = new RegExp(`^${PREFIX}/big/r\\d{3}\\.json$`);

let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3Server([BUCKET]);
});
afterAll(async () => {
  await s3?.stop();
});

/** Lines of JSON Lines texts. */
function entriesOf(texts: string[]): LedgerEntry[] {
  return texts.flatMap((text) => text.split('\n').filter(Boolean)).map((line) => JSON.parse(line) as LedgerEntry);
}

/** The ledger as it stands: segments shipped to the bucket, and those still in the spools (read once each, by name). */
async function ledgerNow(spoolLedgers: string[]): Promise<LedgerEntry[]> {
  const shipped = (await s3.objects(BUCKET, `${PREFIX}/ledger/`)).map((object) => object.key);
  const shippedNames = new Set(shipped.map((key) => key.slice(key.lastIndexOf('/') + 1)));
  const texts = await Promise.all(shipped.map(async (key) => (await s3.read(BUCKET, key)).toString()));
  for (const dir of spoolLedgers) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (shippedNames.has(name)) continue;
      texts.push(await readFile(join(dir, name), 'utf8').catch(() => ''));
    }
  }
  return entriesOf(texts);
}

describe('queue mode with outputs in a bucket', () => {
  it('200 rows, two workers with their own spools, one SIGKILLed and restarted: every image in the bucket, byte-identical, report equal to the bill, no partial object', async () => {
    const { env: queueEnv, mock } = await setup('s3-two-workers', ['--latency-ms', '50', '--latency-jitter-ms', '80']);
    const spools = [await mkdtemp(join(tmpdir(), 'thb-spool-a-')), await mkdtemp(join(tmpdir(), 'thb-spool-b-'))];
    const spoolLedgers = spools.map((spool) => join(spool, BUCKET, PREFIX, 'ledger'));
    const env = { ...queueEnv, ...s3.env, TOKENHOT_OUT_DIR: `s3://${BUCKET}/${PREFIX}` };
    const rows = Array.from({ length: 200 }, (_, i) => ({
      id: `r${String(i).padStart(3, '0')}`,
      prompt: `bucket item ${i}${i % 40 === 7 ? ' [mock:two-images]' : ''}`,
      model: MODELS[i % 3]!,
    }));
    const csv = await writeCsv('s3-two-workers', rows);
    expect((await runInProcess(['enqueue', csv, '--batch', 'big'], env)).code).toBe(0);

    const settled = async (): Promise<number> => (await s3.objects(BUCKET, `${PREFIX}/big/`)).filter((object) => SETTLED_KEY.test(object.key)).length;
    const a = worker({ ...env, TOKENHOT_SPOOL_DIR: spools[0]! }, ['--concurrency', '4']);
    const b = worker({ ...env, TOKENHOT_SPOOL_DIR: spools[1]! }, ['--concurrency', '4']);
    // Listing the bucket loads the server: asked five times a second, not waitFor's forty.
    await waitFor('70 rows settled in the bucket', async () => (await sleep(175), (await settled()) >= 70));
    // Kill A while no answer is on the wire, once every answer sent before is in a ledger (its
    // spool's or the bucket's), so that the comparison below is exact.
    await fetch(`${mock.url}/__mock/hold`, { method: 'POST' });
    await waitFor('answers sent before the hold to be in a ledger', async () => (await ledgerNow(spoolLedgers)).length === billed(await mock.requests()).length);
    a.child.kill('SIGKILL');
    await a.done;
    // What A billed is in its spool only (its segment was not a minute old): for its successor to ship.
    expect(await readdir(spoolLedgers[0]!)).not.toEqual([]);
    await sleep(1000);
    await fetch(`${mock.url}/__mock/release`, { method: 'POST' });
    // A's machine starts a worker again, on the same spool: it ships what A left there.
    const again = worker({ ...env, TOKENHOT_SPOOL_DIR: spools[0]! }, ['--concurrency', '4']);

    const [resultB, resultAgain] = await Promise.all([b.done, again.done]);
    expect(resultB.code, resultB.stderr).toBe(0);
    expect(resultAgain.code, resultAgain.stderr).toBe(0);

    const records = await mock.requests();
    const sentSets = new Map<string, string[][]>();
    for (const record of billed(records)) sentSets.set(record.prompt, [...(sentSets.get(record.prompt) ?? []), record.images.map((image) => image.sha256)]);

    // Only images, sidecars, the manifest and ledger segments: no partial or temporary object.
    const keys = (await s3.objects(BUCKET, `${PREFIX}/`)).map((object) => object.key);
    for (const key of keys) expect(key).toMatch(new RegExp(`^${PREFIX}/(big/(r\\d{3}(-2)?\\.(png|jpg)|r\\d{3}\\.json|manifest\\.(csv|json))|ledger/[^/]+\\.jsonl)$`));
    let imageCount = 0;
    for (const row of rows) {
      const sidecar = JSON.parse((await s3.read(BUCKET, `${PREFIX}/big/${row.id}.json`)).toString()) as { status: string; images: { file: string }[] };
      expect(sidecar.status, row.id).toBe('done');
      const inBucket = await Promise.all(sidecar.images.map(async (image) => sha256(await s3.read(BUCKET, `${PREFIX}/big/${image.file}`))));
      // A row done twice (a job recovered while its first worker still ran) keeps one of its answers.
      expect(sentSets.get(row.prompt)?.map((set) => set.join()), row.id).toContain(inBucket.join());
      imageCount += inBucket.length;
    }
    expect(keys.filter((key) => /\.(png|jpg)$/.test(key))).toHaveLength(imageCount);
    expect(keys).toContain(`${PREFIX}/big/manifest.csv`);

    // Every billed answer is in the bucket's ledger once, and nothing is left in either spool.
    for (const dir of spoolLedgers) expect(await readdir(dir).catch(() => [] as string[])).toEqual([]);
    expect(await ledgerNow([])).toHaveLength(billed(records).length);

    const report = await runInProcess(['report', '--by', 'model', '--format', 'json'], { ...env, TOKENHOT_SPOOL_DIR: await mkdtemp(join(tmpdir(), 'thb-spool-report-')) });
    expect(report.code, report.stderr).toBe(0);
    const { totals, groups } = JSON.parse(report.stdout) as { totals: { requests: number; costUsd: number }; groups: { key: { model: string }; costUsd: number }[] };
    expect(totals.requests).toBe(billed(records).length);
    const bill = mockBill(records);
    for (const group of groups) expect(Math.abs(group.costUsd - usd(bill.get(`gemini/${group.key.model}`)!)), group.key.model).toBeLessThan(1e-9);
    expect(Math.abs(totals.costUsd - usd([...bill.values()].reduce((sum, pico) => sum + pico, 0n)))).toBeLessThan(1e-9);
  });
});
