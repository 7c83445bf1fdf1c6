/**
 * A job definition's `out:` in queue mode: a worker whose own output (TOKENHOT_OUT_DIR) is a
 * local folder writes a catalog firing of a job with `out: s3://...` to that bucket (images,
 * sidecars, manifest, latest/ and ledger), a job enqueued with `--job` and `out:` a folder to
 * that folder, and a CSV enqueued with `--out` to its folder; `report` on each output equals the mock's bill of its rows. A job whose bucket
 * cannot be used fails its rows before any call, with the reason, and the others go on.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchState } from '../src/queue/batch-state.js';
import type { LedgerEntry } from '../src/core/types.js';
import { runInProcess } from './helpers/cli-in-process.js';
import { mockBill, usd } from './helpers/mock-bill.js';
import { startCli, type MockRecord } from './helpers/processes.js';
import { billed, ledger, processes, redisUrl, setup, sha256, testFile, useQueueHarness, waitFor, worker } from './helpers/queue-harness.js';
import { safeHostname } from '../src/output/host-processes.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';

useQueueHarness();

const BUCKET = 'thb-job-out';
const ROWS = 5;

let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3Server([BUCKET]);
});
afterAll(async () => {
  await s3?.stop();
});

/** A prompt CSV of ROWS rows whose prompts name the job (the mock's log tells the jobs apart). */
async function promptsOf(path: string, job: string): Promise<string[]> {
  const prompts = Array.from({ length: ROWS }, (_, i) => `${job} product ${i}${i === 2 ? ' [mock:two-images]' : ''}`);
  await writeFile(path, ['id,prompt,model', ...prompts.map((prompt, i) => `p${i},"${prompt}",gemini-2.5-flash-image`)].join('\n'));
  return prompts;
}

/** The mock's total for the billed answers of these prompts, in USD. */
function billOf(records: MockRecord[], prompts: string[]): number {
  const mine = records.filter((record) => prompts.includes(record.prompt));
  return usd([...mockBill(mine).values()].reduce((sum, pico) => sum + pico, 0n));
}

describe("a job's out:", () => {
  it('sends its batches there whatever the worker writes to: a firing to a bucket, enqueue --job to a folder (and enqueue --out a CSV\'s); a bucket it cannot use fails its rows unbilled', async () => {
    const { env: queueEnv, mock, out: workerOut, prefix } = await setup('job-outputs');
    const jobs = testFile('jobs');
    const other = testFile('other');
    await mkdir(jobs, { recursive: true });
    await mkdir(other, { recursive: true });
    const prompts = {
      bucket: await promptsOf(join(jobs, 'bucket-rows.csv'), 'bucket'),
      folder: await promptsOf(join(jobs, 'folder-rows.csv'), 'folder'),
      broken: await promptsOf(join(other, 'broken-rows.csv'), 'broken'),
      flagged: await promptsOf(join(other, 'flagged-rows.csv'), 'flagged'),
      unwritable: await promptsOf(join(other, 'unwritable-rows.csv'), 'unwritable'),
    };
    await writeFile(join(jobs, 'to-bucket.yaml'), `name: to-bucket\ncsv: bucket-rows.csv\nschedule: { every: 1h }\nbatch: "{name}"\nout: s3://${BUCKET}/shop/\n`);
    // A folder is relative to the definition file, as its csv is.
    await writeFile(join(jobs, 'to-folder.yaml'), 'name: to-folder\ncsv: folder-rows.csv\nschedule: { every: 1h }\nout: ../folder-out\n');
    await writeFile(join(other, 'broken.yaml'), 'name: broken\ncsv: broken-rows.csv\nout: s3://thb-no-such-bucket/x\n');
    // A folder no worker can make: a file is in the way.
    await writeFile(join(other, 'blocker'), 'a file, not a folder\n');
    await writeFile(join(other, 'unwritable.yaml'), 'name: unwritable\ncsv: unwritable-rows.csv\nout: blocker/images\n');
    const folderOut = testFile('folder-out');
    const env = { ...queueEnv, ...s3.env, TOKENHOT_SPOOL_DIR: testFile('spool') };

    const synced = await runInProcess(['schedule', 'sync', jobs], env);
    expect(synced.code, synced.stderr).toBe(0);
    const list = await runInProcess(['schedule', 'list'], env);
    expect(list.stdout).toContain(`out s3://${BUCKET}/shop\n`);
    expect(list.stdout).toContain(`out ${folderOut}\n`);
    // The outputs that cannot be used: tried twice (a second attempt after the backoff), then failed.
    for (const [job, attempts] of [[join(jobs, 'to-folder.yaml'), '5'], [join(other, 'broken.yaml'), '2'], [join(other, 'unwritable.yaml'), '2']] as const) {
      const enqueued = await runInProcess(['enqueue', '--job', job, '--attempts', attempts, '--plain'], env);
      expect(enqueued.code, enqueued.stderr).toBe(0);
    }
    // A CSV's batch sent elsewhere by `enqueue --out`.
    const flaggedOut = testFile('flagged-out');
    const flagged = await runInProcess(['enqueue', join(other, 'flagged-rows.csv'), '--batch', 'flagged', '--out', flaggedOut, '--plain'], env);
    expect(flagged.code, flagged.stderr).toBe(0);
    // A batch keeps the output it was given: another one would split it.
    const elsewhere = await runInProcess(['enqueue', join(other, 'flagged-rows.csv'), '--batch', 'flagged', '--out', testFile('elsewhere'), '--plain'], env);
    expect([elsewhere.code, elsewhere.stderr]).toEqual([2, expect.stringContaining(`batch flagged is written to ${flaggedOut}, not ${testFile('elsewhere')}`)]);
    const late = await runInProcess(['enqueue', '--job', join(jobs, 'to-folder.yaml'), '--out', testFile('elsewhere'), '--plain'], env);
    expect([late.code, late.stderr]).toEqual([2, expect.stringContaining(`batch to-folder is written to ${folderOut}`)]);
    expect((await runInProcess(['schedule', 'run', 'to-bucket'], env)).code).toBe(0);

    const worker = startCli(['work', '--concurrency', '4', '--plain'], env);
    processes.push(worker);
    const client = new Redis(redisUrl, { maxRetriesPerRequest: null });
    try {
      const batches = new BatchState(client, prefix);
      const settled = async (batch: string): Promise<boolean> => {
        const counts = await batches.counts(batch);
        return counts.rows === ROWS && counts.done + counts.failed === ROWS;
      };
      const names = ['to-bucket', 'to-folder', 'broken', 'flagged', 'unwritable'];
      await waitFor('the batches to settle', async () => (await Promise.all(names.map(settled))).every(Boolean));
      expect((await batches.counts('to-bucket')).done).toBe(ROWS);
      expect((await batches.counts('to-folder')).done).toBe(ROWS);
      const broken = await batches.failedRows('broken');
      expect(broken).toHaveLength(ROWS);
      for (const row of broken) expect(row.reason).toContain('cannot use the output bucket s3://thb-no-such-bucket/x');
      const unwritable = await batches.failedRows('unwritable');
      expect(unwritable).toHaveLength(ROWS);
      for (const row of unwritable) expect(row.reason).toContain(`cannot write to the output folder ${join(other, 'blocker', 'images')}: ENOTDIR`);
    } finally {
      client.disconnect();
    }
    const status = (await runInProcess(['status'], env)).stdout;
    expect(status).toContain(`batch to-bucket is written to s3://${BUCKET}/shop\n`);
    expect(status).toContain(`batch flagged is written to ${flaggedOut}\n`);
    // A stopped worker ships the rest of its spooled ledger to the bucket.
    worker.child.kill('SIGTERM');
    const stopped = await worker.done;
    expect(stopped.code).toBe(0);
    expect(stopped.stderr).toContain('tried again later');

    const records = await mock.requests();
    // Nothing of the jobs whose output cannot be used was sent (or billed).
    expect(records.filter((record) => prompts.broken.includes(record.prompt) || prompts.unwritable.includes(record.prompt))).toEqual([]);
    const sent = new Map(billed(records).map((record) => [record.prompt, record.images.map((image) => image.sha256)]));

    // The firing's batch is in the bucket: every image the mock sent, its manifest, latest/ and ledger.
    for (const [i, prompt] of prompts.bucket.entries()) {
      const sidecar = JSON.parse((await s3.read(BUCKET, `shop/to-bucket/p${i}.json`)).toString()) as { status: string; images: { file: string }[] };
      expect(sidecar.status).toBe('done');
      expect(await Promise.all(sidecar.images.map(async (image) => sha256(await s3.read(BUCKET, `shop/to-bucket/${image.file}`))))).toEqual(sent.get(prompt));
    }
    const keys = (await s3.objects(BUCKET, 'shop/')).map((object) => object.key);
    expect(keys).toContain('shop/to-bucket/manifest.csv');
    expect(keys).toContain('shop/latest/to-bucket/p0.png');
    expect(keys.some((key) => key.startsWith('shop/ledger/'))).toBe(true);
    const fromBucket = await runInProcess(['report', '--out', `s3://${BUCKET}/shop`, '--format', 'json'], env);
    expect(fromBucket.code, fromBucket.stderr).toBe(0);
    const bucketTotals = (JSON.parse(fromBucket.stdout) as { totals: { requests: number; costUsd: number } }).totals;
    expect(bucketTotals.requests).toBe(ROWS);
    expect(Math.abs(bucketTotals.costUsd - billOf(records, prompts.bucket))).toBeLessThan(1e-9);

    // The job enqueued with --job went to its own folder, with its ledger, manifest and latest/.
    const folderLedger: LedgerEntry[] = await ledger(folderOut);
    expect(folderLedger.map((entry) => entry.rowId).sort()).toEqual(prompts.folder.map((_, i) => `p${i}`));
    expect(existsSync(join(folderOut, 'to-folder', 'manifest.csv'))).toBe(true);
    expect(existsSync(join(folderOut, 'latest', 'to-folder', 'p2-2.png'))).toBe(true);
    const fromFolder = await runInProcess(['report', '--out', folderOut, '--format', 'json'], env);
    expect(Math.abs((JSON.parse(fromFolder.stdout) as { totals: { costUsd: number } }).totals.costUsd - billOf(records, prompts.folder))).toBeLessThan(1e-9);

    expect((await ledger(flaggedOut)).map((entry) => entry.rowId).sort()).toEqual(prompts.flagged.map((_, i) => `p${i}`));
    expect(existsSync(join(flaggedOut, 'flagged', 'manifest.csv'))).toBe(true);

    // The worker's own output holds none of it.
    expect(existsSync(join(workerOut, 'to-bucket'))).toBe(false);
    expect(existsSync(join(workerOut, 'to-folder'))).toBe(false);
    expect(existsSync(join(workerOut, 'flagged'))).toBe(false);
    expect(await ledger(workerOut)).toEqual([]);
  }, 90_000);

  it("a worker starting ships the ledger segment a killed process left in a job bucket's spool", async () => {
    const { env: queueEnv } = await setup('job-outputs-leftover');
    const spool = testFile('spool-leftover');
    const dead = spawn(process.execPath, ['-e', '0']);
    await once(dead, 'exit');
    // As a worker SIGKILLed while it wrote to a job's `out: s3://thb-job-out/left`: its segment, by its pid.
    const name = `20261130T000000-${safeHostname()}-${dead.pid}-1.jsonl`;
    await mkdir(join(spool, BUCKET, 'left', 'ledger'), { recursive: true });
    const line = '{"rowId":"x1","batch":"left"}\n';
    await writeFile(join(spool, BUCKET, 'left', 'ledger', name), line);
    const env = { ...queueEnv, ...s3.env, TOKENHOT_SPOOL_DIR: spool };
    const drained = await worker(env, ['--no-catalog']).done;
    expect(drained.code, drained.stderr).toBe(0);
    expect((await s3.read(BUCKET, `left/ledger/${name}`)).toString()).toBe(line);
    expect(existsSync(join(spool, BUCKET, 'left', 'ledger', name))).toBe(false);
  });
});
