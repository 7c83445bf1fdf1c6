/**
 * A bucket output's ledger: appended and flushed in the spool, in segments closed by size and by
 * age and shipped to `ledger/` in the bucket (s3rver in its own process); what a dead process of
 * this machine left is shipped by the next one, what a live one writes is not touched, and a
 * reader on this machine counts shipped and unshipped segments once each.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerEntry } from '../src/core/types.js';
import { safeHostname } from '../src/output/host-processes.js';
import { Ledger } from '../src/output/ledger.js';
import { openOutput } from '../src/output/open-output.js';
import { runInProcess } from './helpers/cli-in-process.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';

const BUCKET = 'thb-ledger';

function entry(rowId: string): LedgerEntry {
  return { ts: '2026-11-30T01:00:00.000Z', batch: 'b', rowId, model: 'gemini-2.5-flash-image', attempt: 1, outcome: 'done', images: 1, tags: [], usageMetadata: { promptTokenCount: 10, candidatesTokenCount: 1300, candidatesTokensDetails: [{ modality: 'IMAGE', tokenCount: 1290 }] }, host: 'h', pid: 1 };
}

const linesOf = async (path: string): Promise<string[]> => (await readFile(path, 'utf8')).split('\n').filter(Boolean);

describe('a spooled ledger', () => {
  let s3: S3Server;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'thb-ledger-'));
    s3 = await startS3Server([BUCKET]);
  });
  afterAll(async () => {
    await s3?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts a new segment by size and by age, each shipped once closed, the last at close; no line lost', async () => {
    const shipped: string[] = [];
    const ledger = new Ledger(join(dir, 'rotate'), { durable: false, segments: { maxBytes: 1000, maxAgeMs: 150, ship: async (path) => void shipped.push(path) } });
    for (let i = 0; i < 12; i++) await ledger.append(entry(`size-${i}`));
    // ~250 bytes a line: a new segment every four lines or so.
    expect(shipped.length).toBeGreaterThanOrEqual(2);
    await ledger.append(entry('age'));
    const before = shipped.length;
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(shipped.length).toBe(before + 1);
    await ledger.append(entry('last'));
    await ledger.close();
    const names = shipped.map((path) => basename(path));
    expect(names.every((name) => new RegExp(`^\\d{8}T\\d{6}-${safeHostname()}-${process.pid}-\\d+\\.jsonl$`).test(name))).toBe(true);
    expect(new Set(names).size).toBe(names.length);
    const lines = (await Promise.all(shipped.map(linesOf))).flat().map((line) => (JSON.parse(line) as LedgerEntry).rowId);
    expect(lines).toEqual([...Array.from({ length: 12 }, (_, i) => `size-${i}`), 'age', 'last']);
  });

  it('what a dead process of this machine left is shipped by the next; a live one\'s segment stays; report counts each line once', async () => {
    const spool = join(dir, 'spool');
    const env = { ...process.env, ...s3.env, TOKENHOT_SPOOL_DIR: spool };
    const ledgerDir = join(spool, BUCKET, 'shop', 'ledger');
    await mkdir(ledgerDir, { recursive: true });
    const gone = spawn(process.execPath, ['-e', '']);
    await once(gone, 'exit');
    const alive = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      const left = `20261130T010000-${safeHostname()}-${gone.pid}-1.jsonl`;
      const writing = `20261130T010001-${safeHostname()}-${alive.pid}-1.jsonl`;
      await writeFile(join(ledgerDir, left), `${JSON.stringify(entry('left-1'))}\n${JSON.stringify(entry('left-2'))}\n`);
      await writeFile(join(ledgerDir, writing), `${JSON.stringify(entry('writing'))}\n`);

      const output = await openOutput(`s3://${BUCKET}/shop`, { durable: false, env });
      await output.ledger.append(entry('mine'));
      await output.close();

      const keys = (await s3.objects(BUCKET, 'shop/ledger/')).map((object) => basename(object.key));
      expect(keys).toContain(left);
      expect(keys).not.toContain(writing);
      expect(keys).toHaveLength(2);
      expect(await readdir(ledgerDir)).toEqual([writing]);

      // A reader on this machine: the bucket's segments and the one still being written, once each.
      const report = await runInProcess(['report', '--out', `s3://${BUCKET}/shop`, '--format', 'json'], { ...s3.env, TOKENHOT_SPOOL_DIR: spool });
      expect(report.code, report.stderr).toBe(0);
      expect((JSON.parse(report.stdout) as { totals: { requests: number } }).totals.requests).toBe(4);
      // Elsewhere, only what was shipped.
      const elsewhere = await runInProcess(['report', '--out', `s3://${BUCKET}/shop`, '--format', 'json'], { ...s3.env, TOKENHOT_SPOOL_DIR: join(dir, 'other-machine') });
      expect((JSON.parse(elsewhere.stdout) as { totals: { requests: number } }).totals.requests).toBe(3);
    } finally {
      alive.kill('SIGKILL');
    }
  });
});
