/**
 * What the queue tests share: one mock-server process per test file (its log and per-prompt
 * attempt counts reset before each test), a key prefix per test, CSV files and worker processes,
 * all ended or removed after each test (only this test's keys). A test that needs other mock
 * flags (a quota) gets a mock of its own; a latency of its own is a `[mock:latency=MS]` in its
 * prompts.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, inject } from 'vitest';
import type { LedgerEntry } from '../../src/core/types.js';
import { startCli, startMockProcess, type CliProcess, type MockProcess, type MockRecord } from './processes.js';
import { removePrefix, uniquePrefix } from './redis.js';
import { isSidecar } from './output-files.js';

export const KEY = 'queue-test-key-77';
export const MODELS = ['gemini-3-pro-image-preview', 'gemini-3.1-flash-image-preview', 'gemini-2.5-flash-image'];
export const redisUrl = inject('redisUrl');
export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface CsvRow {
  id: string;
  prompt: string;
  model: string;
}

let dir: string;
const prefixes: string[] = [];
/** Processes a test started; each is killed after the test if still running. */
export const processes: CliProcess[] = [];
/** The file's mock, and those started for one test only. */
let fileMock: MockProcess;
const ownMocks: MockProcess[] = [];

/**
 * Registers the hooks that make and clean up the file's folder and mock, and each test's
 * processes and keys. `mockArgs`: the file mock's flags (answers after 20 ms unless told).
 */
export function useQueueHarness(mockArgs: string[] = ['--latency-ms', '20']): void {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'thb-queue-'));
    fileMock = await startMockProcess(['--api-key', KEY, ...mockArgs]);
  });
  afterEach(async () => {
    for (const process of processes.splice(0)) if (process.child.exitCode === null && process.child.signalCode === null) process.child.kill('SIGKILL');
    for (const mock of ownMocks.splice(0)) await mock.stop();
    for (const prefix of prefixes.splice(0)) await removePrefix(redisUrl, prefix);
  });
  afterAll(async () => {
    await fileMock?.stop();
    await rm(dir, { recursive: true, force: true });
  });
}

/**
 * A test's prefix, output folder and environment, against the file's mock (reset, and not
 * holding answers) or, given `ownMockArgs`, a mock of its own with those flags.
 */
export async function setup(name: string, ownMockArgs?: string[]) {
  const prefix = uniquePrefix(name);
  prefixes.push(prefix);
  let mock = fileMock;
  if (ownMockArgs) {
    mock = await startMockProcess(['--api-key', KEY, ...ownMockArgs]);
    ownMocks.push(mock);
  } else {
    await fetch(`${mock.url}/__mock/release`, { method: 'POST' });
    await mock.reset();
  }
  const out = join(dir, name);
  const env = { REDIS_URL: redisUrl, TOKENHOT_QUEUE_PREFIX: prefix, TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url, TOKENHOT_OUT_DIR: out };
  return { prefix, mock, out, env };
}

/** A path in this file's test folder. */
export function testFile(name: string): string {
  return join(dir, name);
}

export async function writeCsv(name: string, rows: CsvRow[]): Promise<string> {
  const path = join(dir, `${name}.csv`);
  await writeFile(path, ['id,prompt,model', ...rows.map((row) => `${row.id},"${row.prompt.replace(/"/g, '""')}",${row.model}`)].join('\n'));
  return path;
}

export function worker(env: Record<string, string>, args: string[] = []): CliProcess {
  // A short lock so a killed worker's jobs come back within seconds (30 s by default).
  const process = startCli(['work', '--until-drained', '--lock-duration', '4000', '--stalled-interval', '1000', ...args], env);
  processes.push(process);
  return process;
}

export async function sidecars(out: string, batch: string): Promise<string[]> {
  return (await readdir(join(out, batch)).catch(() => [] as string[])).filter(isSidecar);
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export async function ledger(out: string): Promise<LedgerEntry[]> {
  const files = await readdir(join(out, 'ledger')).catch(() => [] as string[]);
  const text = (await Promise.all(files.map((file) => readFile(join(out, 'ledger', file), 'utf8')))).join('');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LedgerEntry);
}

export function billed(records: MockRecord[]): MockRecord[] {
  return records.filter((record) => record.status === 200 && record.usageMetadata);
}

