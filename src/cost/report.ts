/**
 * Cost reports: the ledger, streamed, summed per group with the cost rule and the price table of
 * each line's day. Sums are exact (tokens as integers, money in picodollars).
 *
 * Speed: a report reads every line of the ledger once, so the work per line is kept small. The
 * cost is not computed per line (three BigInt products per line and group were a large part of
 * a report's time): each group sums the tokens of the lines that share one price, and the cost
 * rule is applied once per (group, price) at the end. Under the linear cost rule
 * Σ(tokens × price) = price × Σtokens, so the result is the same to the picodollar.
 */
import { costPico, formatUsd, picoToUsd, type ModelPrice, type PriceTable } from './pricing.js';
import type { LedgerEntry, TokenCounts } from '../core/types.js';
import { billingOfEntry } from '../output/ledger.js';
import { tokenCountsOf } from './billing.js';

export const GROUP_KEYS = ['model', 'day', 'batch', 'tag'] as const;
export type GroupKey = (typeof GROUP_KEYS)[number];

/** The group of lines without a tag, when grouping by tag. */
export const NO_TAG = '(none)';

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
  /**
   * Totals per UTC day, oldest first, whatever `by` is: the HTML chart needs them, and they come
   * from the same pass over the ledger. Not part of the JSON contract.
   */
  daily: ReportGroup[];
  /** Models with no price: their tokens are shown, their cost is not counted. Said loudly. */
  unpricedModels: string[];
  warnings: string[];
}

export interface ReportOptions {
  by: GroupKey[];
  prices: PriceTable;
  /** Only this batch and its sub-batches (`name/...`). */
  batch?: string;
  /** From this UTC day (`YYYY-MM-DD`) or ISO time on, inclusive. */
  since?: string;
  /** To this UTC day (`YYYY-MM-DD`) inclusive, or up to an ISO time (exclusive). */
  until?: string;
}

/** Token sums of the lines of one group that share one price (see the header). */
interface PriceBucket {
  price: ModelPrice;
  counts: TokenCounts;
}

/** One ledger line, read once and added to the totals, its day and each of its groups. */
interface Line {
  images: number;
  failed: boolean;
  counts: TokenCounts;
  price: ModelPrice | undefined;
}

interface Group {
  key: Partial<Record<GroupKey, string>>;
  acc: Accumulator;
}

/** A level of the group tree: the next key's values, and at the last level the group. */
interface GroupNode {
  children: Map<string, GroupNode>;
  group?: Group;
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
  unpricedRequests = 0;
  // A group sees few prices (one per model and price period), so a list beats a Map; the last
  // bucket used is tried first, as neighbouring lines mostly share a price.
  private readonly buckets: PriceBucket[] = [];
  private last: PriceBucket | undefined;

  add(line: Line): void {
    const counts = line.counts;
    this.requests += 1;
    this.images += line.images;
    if (line.failed) this.failedRows += 1;
    // Token sums are whole numbers far below 2^53 (that is 9e15 tokens), so they stay exact.
    this.promptTokens += counts.promptTokens;
    this.imageOutputTokens += counts.imageOutputTokens;
    this.textOutputTokens += counts.textOutputTokens;
    this.thoughtsTokens += counts.thoughtsTokens;
    this.totalTokens += counts.totalTokens;
    if (line.price === undefined) {
      this.unpricedRequests += 1;
      return;
    }
    let bucket = this.last;
    if (bucket?.price !== line.price) {
      bucket = this.buckets.find((candidate) => candidate.price === line.price);
      if (!bucket) {
        bucket = { price: line.price, counts: { promptTokens: 0, imageOutputTokens: 0, textOutputTokens: 0, thoughtsTokens: 0, totalTokens: 0 } };
        this.buckets.push(bucket);
      }
      this.last = bucket;
    }
    bucket.counts.promptTokens += counts.promptTokens;
    bucket.counts.imageOutputTokens += counts.imageOutputTokens;
    bucket.counts.textOutputTokens += counts.textOutputTokens;
    bucket.counts.thoughtsTokens += counts.thoughtsTokens;
  }

  /** The cost rule of pricing.ts applied to each price's token sums: exact, in picodollars. */
  costPico(): bigint {
    let total = 0n;
    for (const bucket of this.buckets) total += costPico(bucket.counts, bucket.price);
    return total;
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
      costUsd: picoToUsd(this.costPico()),
      unpricedRequests: this.unpricedRequests,
    };
  }
}

const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

/** A day or ISO time → the ISO time it means: `since` starts its day, `until` ends after its day. */
export function reportBound(value: string | undefined, edge: 'since' | 'until'): string | undefined {
  if (value === undefined || value === '') return undefined;
  const time = Date.parse(DAY_PATTERN.test(value) ? `${value}T00:00:00.000Z` : value);
  if (Number.isNaN(time)) throw new Error(`--${edge}: "${value}" is not a date (YYYY-MM-DD) or an ISO time`);
  // A day bound covers the whole day: `until` is the start of the next day, exclusive.
  const day = DAY_PATTERN.test(value);
  if (day && new Date(time).toISOString().slice(0, 10) !== value) throw new Error(`--${edge}: "${value}" is not a day of the calendar`);
  return new Date(day && edge === 'until' ? time + 86_400_000 : time).toISOString();
}

/**
 * Sums ledger entries into a report, one entry at a time, so the caller can stream any number of
 * them (`buildReport` is the loop around it).
 */
export class ReportBuilder {
  private readonly since: string | undefined;
  private readonly until: string | undefined;
  private readonly batchPrefix: string | undefined;
  private readonly total = new Accumulator();
  private readonly days = new Map<string, Accumulator>();
  private readonly groupTree: GroupNode = { children: new Map() };
  private readonly groups: Group[] = [];
  /** Requests per model with no price on their day. */
  private readonly unpriced = new Map<string, number>();
  /** Some line counted in more than one tag group. */
  private multiTagged = false;
  /** Price of each (model, day): the table's lookup per line would cost more than the line's sums. */
  private readonly priceCache = new Map<string, Map<string, ModelPrice | null>>();
  private readonly tagIndex: number;
  /**
   * Scratch space for the line being added, reused for every line (`add` is synchronous and
   * nothing keeps it). Measured over a million lines: while the counts object that
   * `tokenCounts` returns was held in a per-line object, V8's allocation-site pretenuring sent
   * that garbage to the old heap in about half the runs (peak RSS ~205 MB instead of ~130 MB;
   * gone with --no-allocation-site-pretenuring). Copying the counts in here and dropping the
   * returned object at once keeps the peak steady.
   */
  private readonly line: Line = { images: 0, failed: false, counts: { promptTokens: 0, imageOutputTokens: 0, textOutputTokens: 0, thoughtsTokens: 0, totalTokens: 0 }, price: undefined };
  private readonly values: string[];

  constructor(private readonly options: ReportOptions) {
    this.since = reportBound(options.since, 'since');
    this.until = reportBound(options.until, 'until');
    this.batchPrefix = options.batch ? `${options.batch}/` : undefined;
    this.tagIndex = options.by.indexOf('tag');
    this.values = options.by.map(() => '');
  }

  add(entry: LedgerEntry): void {
    const { options } = this;
    if (options.batch && entry.batch !== options.batch && !entry.batch.startsWith(this.batchPrefix!)) return;
    // Ledger times are `toISOString()` text, where string order is time order; any other form
    // (an offset) is brought to it first, so the UTC day and the bounds are right.
    const ts = entry.ts.endsWith('Z') && entry.ts.length === 24 ? entry.ts : normalizeTime(entry.ts);
    if (this.since !== undefined && ts < this.since) return;
    if (this.until !== undefined && ts >= this.until) return;
    const day = ts.slice(0, 10);
    const price = this.priceOf(entry.model, day);
    if (!price) this.unpriced.set(entry.model, (this.unpriced.get(entry.model) ?? 0) + 1);
    const line = this.line;
    line.images = typeof entry.images === 'number' ? entry.images : 0;
    line.failed = entry.outcome === 'failed';
    // Copied out, so the provider's object dies at once (see `line`).
    const counts = tokenCountsOf(billingOfEntry(entry));
    line.counts.promptTokens = counts.promptTokens;
    line.counts.imageOutputTokens = counts.imageOutputTokens;
    line.counts.textOutputTokens = counts.textOutputTokens;
    line.counts.thoughtsTokens = counts.thoughtsTokens;
    line.counts.totalTokens = counts.totalTokens;
    line.price = price;
    this.total.add(line);
    let dayAcc = this.days.get(day);
    if (!dayAcc) {
      dayAcc = new Accumulator();
      this.days.set(day, dayAcc);
    }
    dayAcc.add(line);
    if (options.by.length > 0) this.addToGroups(entry, day, line);
  }

  private addToGroups(entry: LedgerEntry, day: string, line: Line): void {
    const by = this.options.by;
    // The values of every key but tag, in `by` order; a line has one of each.
    const values = this.values;
    by.forEach((key, index) => (values[index] = key === 'model' ? entry.model : key === 'day' ? day : key === 'batch' ? entry.batch : ''));
    if (this.tagIndex < 0) {
      this.addToGroup(values, line);
      return;
    }
    // A line counts once in each of its tags (a tag listed twice is still one). No array is
    // made per line: see `line` for why.
    const tags: unknown = entry.tags;
    let tagged = 0;
    if (Array.isArray(tags)) {
      for (let index = 0; index < tags.length; index += 1) {
        const tag: unknown = tags[index];
        if (typeof tag !== 'string' || tags.indexOf(tag) !== index) continue;
        values[this.tagIndex] = tag;
        this.addToGroup(values, line);
        tagged += 1;
      }
    }
    if (tagged > 1) this.multiTagged = true;
    if (tagged === 0) {
      values[this.tagIndex] = NO_TAG;
      this.addToGroup(values, line);
    }
  }

  /**
   * Groups live in a tree of Maps, one level per `by` key: a lookup per value is cheaper than
   * building one string id per line and group, and no two keys can collide whatever characters
   * a batch name or tag holds.
   */
  private addToGroup(values: string[], line: Line): void {
    let node = this.groupTree;
    for (const value of values) {
      let child = node.children.get(value);
      if (!child) {
        child = { children: new Map() };
        node.children.set(value, child);
      }
      node = child;
    }
    if (!node.group) {
      const key: Partial<Record<GroupKey, string>> = {};
      this.options.by.forEach((name, index) => (key[name] = values[index]!));
      node.group = { key, acc: new Accumulator() };
      this.groups.push(node.group);
    }
    node.group.acc.add(line);
  }

  private priceOf(model: string, day: string): ModelPrice | undefined {
    let byDay = this.priceCache.get(model);
    if (!byDay) {
      byDay = new Map();
      this.priceCache.set(model, byDay);
    }
    let price = byDay.get(day);
    if (price === undefined) {
      price = this.options.prices.priceOf(model, `${day}T00:00:00.000Z`) ?? null;
      byDay.set(day, price);
    }
    return price ?? undefined;
  }

  finish(): Report {
    const by = this.options.by;
    const unpricedModels = [...this.unpriced.keys()].sort(compareText);
    const warnings = unpricedModels.map(
      (model) =>
        `NO PRICE for model "${model}" (${this.unpriced.get(model)!.toLocaleString('en-US')} requests): its tokens are shown but its cost is NOT counted; add it to a price file (--prices)`,
    );
    if (this.multiTagged) warnings.push('a line with several tags counts in each of its tag groups, so tag groups may add up to more than the totals');
    return {
      totals: this.total.totals(),
      groups: this.groups.map(({ key, acc }) => ({ key, ...acc.totals() })).sort((a, b) => compareKeys(a.key, b.key, by)),
      daily: [...this.days.entries()].sort(([a], [b]) => compareText(a, b)).map(([day, acc]) => ({ key: { day }, ...acc.totals() })),
      unpricedModels,
      warnings,
    };
  }
}

function normalizeTime(ts: string): string {
  const time = Date.parse(ts);
  // An unreadable time keeps its text: the line still counts, under whatever day its text says.
  return Number.isNaN(time) ? ts : new Date(time).toISOString();
}

export async function buildReport(entries: AsyncIterable<LedgerEntry> | Iterable<LedgerEntry>, options: ReportOptions): Promise<Report> {
  const builder = new ReportBuilder(options);
  for await (const entry of entries) builder.add(entry);
  return builder.finish();
}

/** Code-unit order: the same on every machine, whatever its locale (days sort as dates). */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareKeys(a: Partial<Record<GroupKey, string>>, b: Partial<Record<GroupKey, string>>, by: GroupKey[]): number {
  for (const key of by) {
    const order = compareText(a[key] ?? '', b[key] ?? '');
    if (order !== 0) return order;
  }
  return 0;
}

// ---------------------------------------------------------------- renderers

/** The fields of T, in contract order. */
export const TOTAL_FIELDS: readonly (keyof Totals)[] = [
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

/** Only the fields of T, in contract order (a group's `key` is added by the caller). */
function totalsOnly(t: Totals): Totals {
  return {
    requests: t.requests,
    images: t.images,
    failedRows: t.failedRows,
    promptTokens: t.promptTokens,
    imageOutputTokens: t.imageOutputTokens,
    textOutputTokens: t.textOutputTokens,
    thoughtsTokens: t.thoughtsTokens,
    totalTokens: t.totalTokens,
    costUsd: t.costUsd,
    unpricedRequests: t.unpricedRequests,
  };
}

/** `{"totals": T, "groups": [{"key": {...}, ...T}], "warnings": [...]}`: the contract, and only it. */
export function renderJson(report: Report): string {
  return `${JSON.stringify(
    {
      totals: totalsOnly(report.totals),
      groups: report.groups.map((group) => ({ key: group.key, ...totalsOnly(group) })),
      ...(report.unpricedModels.length > 0 ? { unpricedModels: report.unpricedModels } : {}),
      warnings: report.warnings,
    },
    null,
    2,
  )}\n`;
}

/** A USD amount as `$1,234.5678`, with `+ ?` when some requests had no price. */
export function costText(totals: Totals, decimals = 4): string {
  return `${formatUsd(BigInt(Math.round(totals.costUsd * 1e6)) * 1_000_000n, decimals)}${totals.unpricedRequests > 0 ? ' + ?' : ''}`;
}

const COLUMNS: { title: string; value: (t: Totals) => string }[] = [
  { title: 'requests', value: (t) => t.requests.toLocaleString('en-US') },
  { title: 'images', value: (t) => t.images.toLocaleString('en-US') },
  { title: 'failed', value: (t) => t.failedRows.toLocaleString('en-US') },
  { title: 'prompt tok', value: (t) => t.promptTokens.toLocaleString('en-US') },
  { title: 'image tok', value: (t) => t.imageOutputTokens.toLocaleString('en-US') },
  { title: 'text tok', value: (t) => t.textOutputTokens.toLocaleString('en-US') },
  { title: 'thought tok', value: (t) => t.thoughtsTokens.toLocaleString('en-US') },
  { title: 'cost', value: (t) => costText(t) },
];

/**
 * Ledger text shown in a terminal: control characters (escape sequences that could rewrite the
 * screen, newlines that break the alignment) and bidi overrides are shown as `\xNN` / `\uNNNN`.
 */
export function terminalText(value: string): string {
  return value.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (char) => {
    const code = char.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** An aligned text table with a totals row; warnings first, so they are not missed. */
export function renderTable(report: Report, by: GroupKey[]): string {
  const header = [...by, ...COLUMNS.map((column) => column.title)];
  const rows = report.groups.map((group) => [...by.map((key) => terminalText(group.key[key] ?? '')), ...COLUMNS.map((column) => column.value(group))]);
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
  const warnings = report.warnings.map((warning) => `WARNING: ${terminalText(warning)}`);
  return `${[...warnings, ...body].join('\n')}\n`;
}

/**
 * A spreadsheet runs a cell that starts with = + - @ (or tab/CR, which some strip first) as a
 * formula; a leading ' makes it text. Then RFC 4180 quoting for commas, quotes and newlines.
 */
export function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** Plain decimals (a tiny cost would otherwise print as `3e-7`, which not every sheet reads). */
function usdDecimal(usd: number): string {
  return usd.toFixed(12).replace(/\.?0+$/, '');
}

export function renderCsv(report: Report, by: GroupKey[]): string {
  const lines = [[...by, ...TOTAL_FIELDS].map(csvCell).join(',')];
  const row = (key: Partial<Record<GroupKey, string>>, totals: Totals): string =>
    [...by.map((k) => csvCell(key[k] ?? '')), ...TOTAL_FIELDS.map((field) => (field === 'costUsd' ? usdDecimal(totals.costUsd) : String(totals[field])))].join(',');
  for (const group of report.groups) lines.push(row(group.key, group));
  lines.push(row(Object.fromEntries(by.map((k, i) => [k, i === 0 ? 'TOTAL' : ''])), report.totals));
  return `${lines.join('\n')}\n`;
}
