/**
 * Reports per product and shot: ledger lines name the row's product and shot (its metadata's),
 * lines of earlier versions (which name neither) still read, in `(none)`; grouped exactly by
 * product, shot and their combinations with the other keys, filtered by --product, shown by every
 * format; and from a real `run` of a CSV with product and shot columns against a mock-server
 * process, the report by product and shot equals the sidecars' costs.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ledgerDir, scanLedger } from '../src/output/ledger.js';
import { geminiBilling } from '../src/providers/gemini/usage.js';
import { PriceTable } from '../src/cost/pricing.js';
import { renderCsv, renderTable, ReportBuilder, type GroupKey, type Report, type ReportOptions } from '../src/cost/report.js';
import { renderHtml } from '../src/views/report-html.js';
import type { LedgerEntry, UsageMetadata } from '../src/core/types.js';
import { startMockProcess, type MockProcess } from './helpers/processes.js';
import { geminiPico, usd } from './helpers/mock-bill.js';
import { runInProcess } from './helpers/cli-in-process.js';

const PRO = 'gemini-3-pro-image-preview';
const FLASH = 'gemini-3.1-flash-image-preview';

const folders: string[] = [];
afterAll(async () => {
  await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
});

async function tempFolder(): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'tokenhot-report-products-'));
  folders.push(folder);
  return folder;
}

function usage(prompt: number, image: number, text: number, thoughts: number): UsageMetadata {
  return {
    promptTokenCount: prompt,
    candidatesTokenCount: image + text,
    thoughtsTokenCount: thoughts,
    totalTokenCount: prompt + image + text + thoughts,
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: prompt }],
    candidatesTokensDetails: image > 0 ? [{ modality: 'IMAGE', tokenCount: image }] : [{ modality: 'TEXT', tokenCount: text }],
  };
}

let rowCounter = 0;
/** A line as this version writes it: billing record, provider, and the product and shot given. */
function line(fields: Partial<LedgerEntry> & { usageMetadata: UsageMetadata }): LedgerEntry {
  rowCounter += 1;
  return {
    ts: '2026-11-10T12:00:00.000Z',
    batch: 'nightly',
    rowId: `row-${rowCounter}`,
    provider: 'gemini',
    model: PRO,
    attempt: 1,
    outcome: 'done',
    finishReason: 'STOP',
    images: 1,
    tags: [],
    billing: geminiBilling(fields.usageMetadata),
    host: 'test-host',
    pid: 1,
    ...fields,
  };
}

/** A line as versions before products were recorded wrote it: no provider, billing, product or shot. */
function oldLine(model: string, usageMetadata: UsageMetadata): Record<string, unknown> {
  rowCounter += 1;
  return { ts: '2026-11-09T08:00:00.000Z', batch: 'nightly', rowId: `old-${rowCounter}`, model, attempt: 1, outcome: 'done', images: 1, tags: [], usageMetadata, host: 'old-host', pid: 2 };
}

const LINES: LedgerEntry[] = [
  line({ product: 'mug-blue', shot: 'hero', usageMetadata: usage(40, 1120, 12, 210) }),
  line({ product: 'mug-blue', shot: 'hero', attempt: 2, usageMetadata: usage(40, 1120, 0, 180) }),
  line({ product: 'mug-blue', shot: 'banner', model: FLASH, usageMetadata: usage(35, 1680, 20, 0) }),
  line({ product: 'mug-red', shot: 'hero', usageMetadata: usage(41, 1120, 8, 300) }),
  // Billed and blocked: no image, still the product's cost.
  line({ product: 'mug-red', shot: 'banner', model: FLASH, outcome: 'failed', images: 0, finishReason: 'IMAGE_SAFETY', usageMetadata: usage(33, 0, 25, 90) }),
  // A feed without a shot list: a product, no shot.
  line({ product: 'teapot', usageMetadata: usage(50, 1120, 0, 0) }),
  // A row with neither (a plain CSV).
  line({ usageMetadata: usage(20, 1120, 4, 100) }),
];
const OLD_LINES = [oldLine(PRO, usage(30, 1120, 10, 150)), oldLine(FLASH, usage(25, 1680, 0, 0))];
/** Hand-edited lines: a product that is not text, and an empty one, count as none. */
const ODD_LINES = [{ ...line({ usageMetadata: usage(10, 1120, 0, 0) }), product: 42, shot: '' }];

/** Each line with its product, shot and model as the report should see them, and its cost computed apart from src/. */
const ALL = [...LINES, ...OLD_LINES, ...ODD_LINES].map((entry) => {
  const e = entry as { product?: unknown; shot?: unknown; model: string; usageMetadata: UsageMetadata; images: number; outcome: string };
  const label = (value: unknown): string => (typeof value === 'string' && value !== '' ? value : '(none)');
  return { product: label(e.product), shot: label(e.shot), model: e.model, images: e.images, failed: e.outcome === 'failed', pico: geminiPico(e.model, e.usageMetadata) };
});

interface Expected {
  requests: number;
  images: number;
  failedRows: number;
  pico: bigint;
}

/** The expected groups of `by`, keyed as the report keys them (values joined by `|`). */
function expectedGroups(by: ('product' | 'shot' | 'model')[], lines = ALL): Map<string, Expected> {
  const groups = new Map<string, Expected>();
  for (const l of lines) {
    const id = by.map((key) => l[key]).join('|');
    const group = groups.get(id) ?? { requests: 0, images: 0, failedRows: 0, pico: 0n };
    group.requests += 1;
    group.images += l.images;
    group.failedRows += l.failed ? 1 : 0;
    group.pico += l.pico;
    groups.set(id, group);
  }
  return groups;
}

async function writeLedgerFiles(out: string): Promise<void> {
  await mkdir(ledgerDir(out), { recursive: true });
  const jsonl = (lines: unknown[]): string => lines.map((l) => `${JSON.stringify(l)}\n`).join('');
  await writeFile(join(ledgerDir(out), '20261109T080000-old-host-2.jsonl'), jsonl(OLD_LINES));
  await writeFile(join(ledgerDir(out), '20261110T120000-test-host-1.jsonl'), jsonl([...LINES, ...ODD_LINES]));
}

async function report(out: string, options: Partial<ReportOptions>): Promise<Report> {
  const builder = new ReportBuilder({ by: [], prices: new PriceTable(), ...options });
  await scanLedger(out, (entry) => builder.add(entry));
  return builder.finish();
}

function expectGroupsEqual(r: Report, by: ('product' | 'shot' | 'model')[], expected: Map<string, Expected>): void {
  const seen = r.groups.map((g) => by.map((key) => g.key[key as GroupKey]).join('|'));
  expect(seen).toEqual([...expected.keys()].sort((a, b) => compareKeys(a, b)));
  for (const g of r.groups) {
    const id = by.map((key) => g.key[key as GroupKey]).join('|');
    const want = expected.get(id)!;
    expect(Object.keys(g.key), id).toEqual(by);
    expect({ requests: g.requests, images: g.images, failedRows: g.failedRows, unpricedRequests: g.unpricedRequests }, id).toEqual({
      requests: want.requests,
      images: want.images,
      failedRows: want.failedRows,
      unpricedRequests: 0,
    });
    expect(Math.abs(g.costUsd - usd(want.pico)), id).toBeLessThan(1e-9);
  }
}

/** The report's order: key by key, code-unit order. */
function compareKeys(a: string, b: string): number {
  const left = a.split('|');
  const right = b.split('|');
  for (let index = 0; index < left.length; index += 1) {
    if (left[index]! !== right[index]!) return left[index]! < right[index]! ? -1 : 1;
  }
  return 0;
}

describe('report by product and shot, from ledger files', () => {
  let out = '';
  beforeAll(async () => {
    out = await tempFolder();
    await writeLedgerFiles(out);
  });

  it.each([[['product']], [['shot']], [['product', 'shot']], [['shot', 'model']], [['model', 'product']]] as const)(
    'by %s: every group exact (counts, cost to 1e-9), lines naming none, old ones among them, in (none)',
    async (by) => {
      const r = await report(out, { by: [...by] });
      expectGroupsEqual(r, [...by], expectedGroups([...by]));
      // Every line is in one product and one shot group: the groups add up to the totals.
      expect(r.groups.reduce((sum, g) => sum + g.requests, 0)).toBe(ALL.length);
      expect(Math.abs(r.totals.costUsd - usd(ALL.reduce((sum, l) => sum + l.pico, 0n)))).toBeLessThan(1e-9);
      expect(r.warnings).toEqual([]);
    },
  );

  it('the (none) product holds the old lines, the plain row and the hand-edited one; a product without a shot list is in the (none) shot', async () => {
    const r = await report(out, { by: ['product', 'shot'] });
    expect(r.groups.map((g) => [g.key.product, g.key.shot, g.requests])).toEqual([
      ['(none)', '(none)', 4],
      ['mug-blue', 'banner', 1],
      ['mug-blue', 'hero', 2],
      ['mug-red', 'banner', 1],
      ['mug-red', 'hero', 1],
      ['teapot', '(none)', 1],
    ]);
  });

  it('--product counts only that product: its shots exactly, other products and lines without one left out', async () => {
    const r = await report(out, { by: ['shot'], product: 'mug-red' });
    const mine = ALL.filter((l) => l.product === 'mug-red');
    expectGroupsEqual(r, ['shot'], expectedGroups(['shot'], mine));
    expect(r.totals.requests).toBe(2);
    expect(r.totals.failedRows).toBe(1);
    expect(Math.abs(r.totals.costUsd - usd(mine.reduce((sum, l) => sum + l.pico, 0n)))).toBeLessThan(1e-9);
    expect((await report(out, { product: 'nothing-of-that-name' })).totals.requests).toBe(0);
  });

  it('table, CSV and HTML name the product and shot columns like the other keys', async () => {
    const by: GroupKey[] = ['product', 'shot'];
    const r = await report(out, { by });
    expect(renderTable(r, by).split('\n')[0]).toMatch(/^product\s+shot\s+cost\s+per image/);
    const csv = renderCsv(r, by).split('\n');
    expect(csv[0]).toMatch(/^product,shot,costUsd,/);
    expect(csv).toContainEqual(expect.stringMatching(/^mug-blue,hero,/));
    const html = renderHtml(r, { by, product: 'mug-blue', generatedAt: new Date('2026-11-11T00:00:00Z') });
    expect(html).toContain('<th class="key" scope="col">product</th><th class="key" scope="col">shot</th>');
    expect(html).toContain('<td class="key key-product">mug-blue</td><td class="key key-shot">hero</td>');
    expect(html).toContain('<h2>By product, shot</h2>');
    expect(html).toContain('product mug-blue');
  });

  it('the CLI: --by product,shot in every format, --product, a --product that matches nothing said, an unknown key names product and shot', async () => {
    const json = await runInProcess(['report', '--out', out, '--by', 'product,shot', '--format', 'json']);
    expect(json.code, json.stderr).toBe(0);
    const groups = (JSON.parse(json.stdout) as { groups: { key: Record<string, string>; requests: number }[] }).groups;
    expect(groups.map((g) => `${g.key.product}/${g.key.shot}`)).toEqual(['(none)/(none)', 'mug-blue/banner', 'mug-blue/hero', 'mug-red/banner', 'mug-red/hero', 'teapot/(none)']);

    const filtered = await runInProcess(['report', '--out', out, '--product', 'mug-blue', '--by', 'shot,model', '--format', 'csv']);
    expect(filtered.code, filtered.stderr).toBe(0);
    expect(filtered.stdout.split('\n').filter(Boolean).map((row) => row.split(',').slice(0, 2).join(','))).toEqual([
      'shot,model',
      `banner,${FLASH}`,
      `hero,${PRO}`,
      'TOTAL,',
    ]);

    const html = await runInProcess(['report', '--out', out, '--by', 'product', '--format', 'html']);
    expect(html.stdout).toContain('<td class="key key-product">teapot</td>');

    const typo = await runInProcess(['report', '--out', out, '--product', 'mug-grene', '--format', 'json']);
    expect(typo.code).toBe(0);
    expect(typo.stderr).toContain('no ledger line of product mug-grene; products in the ledger: mug-blue, mug-red, teapot');

    const empty = await runInProcess(['report', '--out', out, '--product', ' ']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('--product: give a product id');

    const bad = await runInProcess(['report', '--out', out, '--by', 'sku']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/"sku" is not one of provider, model, day, batch, tag, product, shot/);
    const help = await runInProcess(['report', '--help']);
    expect(help.stdout).toMatch(/--by <keys>\s+group by any of provider,model,day,batch,tag,product,shot/);
    expect(help.stdout).toContain('--product <id>');
  });
});

describe('report by product and shot, from a real run', () => {
  const KEY = 'sk-report-products-7c41d2';
  let mock: MockProcess;
  let dir = '';
  beforeAll(async () => {
    dir = await tempFolder();
    mock = await startMockProcess(['--api-key', KEY]);
  });
  afterAll(async () => {
    await mock.stop();
  });

  // id, model, product, shot, note (metadata that stays out of the ledger), prompt
  const ROWS = [
    ['mug-blue--hero', PRO, 'mug-blue', 'hero', 'first', 'a blue mug on white'],
    ['mug-blue--banner', FLASH, 'mug-blue', 'banner', '', 'a blue mug in a kitchen'],
    ['mug-red--hero', PRO, 'mug-red', 'hero', 'x', 'a red mug on white'],
    ['mug-red--banner', FLASH, 'mug-red', 'banner', '', 'a red mug, blocked [mock:blocked]'],
    ['mug-red--wide', 'doubao-seedream-4-5-251128', 'mug-red', 'wide', '', 'a red mug, wide'],
    ['teapot', 'gemini-2.5-flash-image', 'teapot', '', '', 'a teapot on white'],
    ['plain', PRO, '', '', 'no product', 'a plain row'],
  ] as const;

  it('run on a CSV with product and shot columns: ledger lines name them (and nothing else of the metadata); the report by product,shot is the sidecars\' costs', async () => {
    const csv = join(dir, 'catalog.csv');
    await writeFile(csv, ['id,model,product,shot,note,prompt', ...ROWS.map((row) => row.map((cell) => `"${cell}"`).join(','))].join('\n'));
    const out = join(dir, 'out');
    const run = await runInProcess(['run', csv, '--out', out, '--plain', '--concurrency', '4'], { TOKENHOT_API_KEY: KEY, TOKENHOT_BASE_URL: mock.url });
    expect(run.stdout + run.stderr).toContain('6 done, 1 failed');

    // The ledger: product and shot when the row has them, no other metadata.
    const ledger = (await Promise.all((await readdir(ledgerDir(out))).map((file) => readFile(join(ledgerDir(out), file), 'utf8'))))
      .flatMap((text) => text.split('\n').filter(Boolean))
      .map((text) => JSON.parse(text) as LedgerEntry & Record<string, unknown>);
    expect(ledger.map((entry) => entry.rowId).sort()).toEqual(ROWS.map((row) => row[0] as string).sort());
    for (const entry of ledger) {
      const row = ROWS.find((r) => r[0] === entry.rowId)!;
      expect(entry.product, entry.rowId).toBe(row[2] === '' ? undefined : row[2]);
      expect(entry.shot, entry.rowId).toBe(row[3] === '' ? undefined : row[3]);
      expect(entry).not.toHaveProperty('note');
      expect(entry).not.toHaveProperty('metadata');
    }

    // What each product and shot cost, by the sidecars.
    const expected = new Map<string, { requests: number; pico: bigint }>();
    for (const [id] of ROWS) {
      const sidecar = JSON.parse(await readFile(join(out, 'catalog', `${id}.json`), 'utf8')) as { metadata: Record<string, string>; costUsd: number | null };
      expect(sidecar.costUsd, id).not.toBeNull();
      const key = `${sidecar.metadata.product || '(none)'}/${sidecar.metadata.shot || '(none)'}`;
      const group = expected.get(key) ?? { requests: 0, pico: 0n };
      group.requests += 1;
      // costUsd is an exact picodollar amount written as a number: back to picodollars exactly.
      group.pico += BigInt(Math.round(sidecar.costUsd! * 1e12));
      expected.set(key, group);
    }

    const result = await runInProcess(['report', '--out', out, '--by', 'product,shot', '--format', 'json']);
    expect(result.code, result.stderr).toBe(0);
    const parsed = JSON.parse(result.stdout) as { groups: { key: { product: string; shot: string }; costUsd: number; requests: number; unpricedRequests: number }[] };
    expect(parsed.groups.map((g) => `${g.key.product}/${g.key.shot}`).sort()).toEqual([...expected.keys()].sort());
    for (const g of parsed.groups) {
      const want = expected.get(`${g.key.product}/${g.key.shot}`)!;
      expect(g.requests, JSON.stringify(g.key)).toBe(want.requests);
      expect(g.unpricedRequests).toBe(0);
      expect(Math.abs(g.costUsd - usd(want.pico)), JSON.stringify(g.key)).toBeLessThan(1e-9);
    }

    // One product alone: its shots, the same figures.
    const red = await runInProcess(['report', '--out', out, '--product', 'mug-red', '--by', 'shot', '--format', 'json']);
    const redGroups = (JSON.parse(red.stdout) as { groups: { key: { shot: string }; costUsd: number }[] }).groups;
    expect(redGroups.map((g) => g.key.shot)).toEqual(['banner', 'hero', 'wide']);
    for (const g of redGroups) expect(Math.abs(g.costUsd - usd(expected.get(`mug-red/${g.key.shot}`)!.pico))).toBeLessThan(1e-9);
  });
});
