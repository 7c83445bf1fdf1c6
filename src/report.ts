/**
 * Cost reports: the ledger, streamed, summed per group with the cost rule and the price table of
 * each line's day. Sums are exact (tokens as integers, money in picodollars).
 */
import { costPico, formatUsd, picoToUsd, type PriceTable } from './pricing.js';
import type { LedgerEntry, TokenCounts, UsageMetadata } from './types.js';

export const GROUP_KEYS = ['model', 'day', 'batch', 'tag'] as const;
export type GroupKey = (typeof GROUP_KEYS)[number];

/** The totals of the contract (`report --format json`). */
export interface Totals {
  requests: number;
  images: number;
  failedRows: number;
  promptTokens: number;
  imageOutputTokens: number;
  textOutputTokens: number;
  thoughtsTokens: number;
  totalTokens: number;
  /** Cost of the priced lines; lines of a model with no price are counted in `unpricedRequests`. */
  costUsd: number;
  unpricedRequests: number;
}

export interface ReportGroup extends Totals {
  key: Partial<Record<GroupKey, string>>;
}

export interface Report {
  totals: Totals;
  groups: ReportGroup[];
  /** Models with no price: their tokens are shown, their cost is not counted. Said loudly. */
  unpricedModels: string[];
  warnings: string[];
}

export interface ReportOptions {
  by: GroupKey[];
  prices: PriceTable;
  tokenCounts: (usage: UsageMetadata) => TokenCounts;
  batch?: string;
  /** Inclusive, `YYYY-MM-DD` or an ISO time. */
  since?: string;
  /** Inclusive day, `YYYY-MM-DD`, or an exclusive ISO time. */
  until?: string;
}

class Accumulator {
  requests = 0;
  images = 0;
  failedRows = 0;
  promptTokens = 0;
  imageOutputTokens = 0;
  textOutputTokens = 0;
  thoughtsTokens = 0;
  totalTokens = 0;
  costPico = 0n;
  unpricedRequests = 0;

  add(entry: LedgerEntry, counts: TokenCounts, cost: bigint | undefined): void {
    this.requests += 1;
    this.images += entry.images;
    if (entry.outcome === 'failed') this.failedRows += 1;
    this.promptTokens += counts.promptTokens;
    this.imageOutputTokens += counts.imageOutputTokens;
    this.textOutputTokens += counts.textOutputTokens;
    this.thoughtsTokens += counts.thoughtsTokens;
    this.totalTokens += counts.totalTokens;
    if (cost === undefined) this.unpricedRequests += 1;
    else this.costPico += cost;
  }

  totals(): Totals {
    return {
      requests: this.requests,
      images: this.images,
      failedRows: this.failedRows,
      promptTokens: this.promptTokens,
      imageOutputTokens: this.imageOutputTokens,
      textOutputTokens: this.textOutputTokens,
      thoughtsTokens: this.thoughtsTokens,
      totalTokens: this.totalTokens,
      costUsd: picoToUsd(this.costPico),
      unpricedRequests: this.unpricedRequests,
    };
  }
}

/** A day bound → the ISO time it means: `since` starts the day, `until` ends it. */
function bound(value: string | undefined, edge: 'start' | 'end'): string | undefined {
  if (!value) return undefined;
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return edge === 'start' ? `${value}T00:00:00.000Z` : `${value}T23:59:59.999Z`;
  return new Date(value).toISOString();
}

function keyValues(entry: LedgerEntry, key: GroupKey): string[] {
  switch (key) {
    case 'model':
      return [entry.model];
    case 'day':
      return [entry.ts.slice(0, 10)];
    case 'batch':
      return [entry.batch];
    case 'tag':
      return entry.tags.length > 0 ? entry.tags : ['(none)'];
  }
}

/** Every combination of the entry's group values (a line with two tags counts in both). */
function groupKeys(entry: LedgerEntry, by: GroupKey[]): Partial<Record<GroupKey, string>>[] {
  let keys: Partial<Record<GroupKey, string>>[] = [{}];
  for (const key of by) {
    const values = keyValues(entry, key);
    keys = keys.flatMap((partial) => values.map((value) => ({ ...partial, [key]: value })));
  }
  return keys;
}

export async function buildReport(entries: AsyncIterable<LedgerEntry>, options: ReportOptions): Promise<Report> {
  const since = bound(options.since, 'start');
  const until = bound(options.until, 'end');
  const total = new Accumulator();
  const groups = new Map<string, { key: Partial<Record<GroupKey, string>>; acc: Accumulator }>();
  const unpriced = new Set<string>();

  for await (const entry of entries) {
    if (options.batch && entry.batch !== options.batch && !entry.batch.startsWith(`${options.batch}/`)) continue;
    if (since && entry.ts < since) continue;
    if (until && entry.ts > until) continue;
    const counts = options.tokenCounts(entry.usageMetadata ?? {});
    const price = options.prices.priceOf(entry.model, entry.ts);
    if (!price) unpriced.add(entry.model);
    const cost = price ? costPico(counts, price) : undefined;
    total.add(entry, counts, cost);
    if (options.by.length === 0) continue;
    for (const key of groupKeys(entry, options.by)) {
      const id = JSON.stringify(key);
      let group = groups.get(id);
      if (!group) {
        group = { key, acc: new Accumulator() };
        groups.set(id, group);
      }
      group.acc.add(entry, counts, cost);
    }
  }

  const warnings = [...unpriced].map(
    (model) => `NO PRICE for model "${model}": its tokens are shown but its cost is NOT counted; add it to a price file (--prices)`,
  );
  if (options.by.includes('tag')) warnings.push('a line with several tags counts in each of its tag groups, so tag groups may add up to more than the totals');
  return {
    totals: total.totals(),
    groups: [...groups.values()]
      .map(({ key, acc }) => ({ key, ...acc.totals() }))
      .sort((a, b) => compareKeys(a.key, b.key, options.by)),
    unpricedModels: [...unpriced],
    warnings,
  };
}

function compareKeys(a: Partial<Record<GroupKey, string>>, b: Partial<Record<GroupKey, string>>, by: GroupKey[]): number {
  for (const key of by) {
    const order = (a[key] ?? '').localeCompare(b[key] ?? '');
    if (order !== 0) return order;
  }
  return 0;
}

// ---------------------------------------------------------------- renderers

export function renderJson(report: Report): string {
  return `${JSON.stringify(
    {
      totals: report.totals,
      groups: report.groups,
      ...(report.unpricedModels.length > 0 ? { unpricedModels: report.unpricedModels } : {}),
      warnings: report.warnings,
    },
    null,
    2,
  )}\n`;
}

const COLUMNS: { title: string; value: (t: Totals) => string }[] = [
  { title: 'requests', value: (t) => t.requests.toLocaleString('en-US') },
  { title: 'images', value: (t) => t.images.toLocaleString('en-US') },
  { title: 'failed', value: (t) => t.failedRows.toLocaleString('en-US') },
  { title: 'prompt tok', value: (t) => t.promptTokens.toLocaleString('en-US') },
  { title: 'image tok', value: (t) => t.imageOutputTokens.toLocaleString('en-US') },
  { title: 'text tok', value: (t) => t.textOutputTokens.toLocaleString('en-US') },
  { title: 'thought tok', value: (t) => t.thoughtsTokens.toLocaleString('en-US') },
  { title: 'cost', value: (t) => `${formatUsd(BigInt(Math.round(t.costUsd * 1e6)) * 1_000_000n, 4)}${t.unpricedRequests > 0 ? ' + ?' : ''}` },
];

/** An aligned text table with a totals row; warnings first, so they are not missed. */
export function renderTable(report: Report, by: GroupKey[]): string {
  const header = [...by, ...COLUMNS.map((column) => column.title)];
  const rows = report.groups.map((group) => [...by.map((key) => group.key[key] ?? ''), ...COLUMNS.map((column) => column.value(group))]);
  const totalRow = [...by.map((_, index) => (index === 0 ? 'TOTAL' : '')), ...COLUMNS.map((column) => column.value(report.totals))];
  if (by.length === 0) totalRow.unshift('TOTAL');
  const head = by.length === 0 ? ['', ...header] : header;
  const all = [head, ...rows, totalRow];
  const widths = head.map((_, col) => Math.max(...all.map((row) => (row[col] ?? '').length)));
  const keyColumns = by.length === 0 ? 1 : by.length;
  const line = (row: string[]): string =>
    row
      .map((cell, col) => (col < keyColumns ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  const body = [line(head), rule, ...rows.map(line), ...(rows.length > 0 ? [rule] : []), line(totalRow)];
  const warnings = report.warnings.map((warning) => `WARNING: ${warning}`);
  return `${[...warnings, ...body].join('\n')}\n`;
}

/** A spreadsheet cannot run a cell that starts with = + - @ (or tab/CR) when it is quoted with '. */
export function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function renderCsv(report: Report, by: GroupKey[]): string {
  const fields: (keyof Totals)[] = [
    'requests',
    'images',
    'failedRows',
    'promptTokens',
    'imageOutputTokens',
    'textOutputTokens',
    'thoughtsTokens',
    'totalTokens',
    'costUsd',
    'unpricedRequests',
  ];
  const lines = [[...by, ...fields].map(csvCell).join(',')];
  const row = (key: Partial<Record<GroupKey, string>>, totals: Totals): string =>
    [...by.map((k) => csvCell(key[k] ?? '')), ...fields.map((field) => String(totals[field]))].join(',');
  for (const group of report.groups) lines.push(row(group.key, group));
  lines.push(row(Object.fromEntries(by.map((k, i) => [k, i === 0 ? 'TOTAL' : ''])), report.totals));
  return `${lines.join('\n')}\n`;
}
