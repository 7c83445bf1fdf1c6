/**
 * `report --format html`: one self-contained page (inline CSS and SVG, no script, no external
 * URL), so it can be mailed, archived or opened offline and shows the same thing everywhere.
 *
 * The page comes as chunks, a table row each, so `report` writes a breakdown of tens of thousands
 * of groups without holding the page (and its copies) as one string: over a million ledger lines
 * by every key that was most of the command's peak memory.
 *
 * Everything that comes from the ledger (batch names, tags, products, shots, models, even the
 * days, since a ledger line is only text) is user data and goes through `escapeHtml`.
 */
import { formatUsd } from '../cost/pricing.js';
import { costPerImageText, costText, type ApprovalTotals, type GroupKey, type Report, type ReportGroup, type ReviewFigures, type Totals } from '../cost/report.js';

export interface HtmlReportOptions {
  by: GroupKey[];
  /** The filters the report was made with, shown under the title. */
  batch?: string;
  product?: string;
  since?: string;
  until?: string;
  /** When the report was made (a parameter so tests get fixed output). */
  generatedAt?: Date;
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text → HTML text or attribute value (quotes included, so it is safe in both). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ENTITIES[char]!);
}

const KEY_TITLES: Record<GroupKey, string> = { provider: 'provider', model: 'model', day: 'day (UTC)', batch: 'batch', tag: 'tag', product: 'product', shot: 'shot' };

const number = (value: number): string => value.toLocaleString('en-US');

const CSS = `
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6475; --line: #d9dde5; --bar: #3b6fd8; --bar-unpriced: #d9822b; --alert: #b3261e; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0 auto; padding: 24px; max-width: 1200px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
.meta { color: var(--muted); margin: 0 0 16px; }
.alerts { margin: 16px 0; }
.alert { border: 2px solid var(--alert); background: #fdecea; color: var(--alert); padding: 12px 16px; border-radius: 6px; font-size: 16px; font-weight: 600; margin: 0 0 8px; }
.note { border-left: 4px solid var(--line); color: var(--muted); padding: 4px 12px; margin: 0 0 6px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 150px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card.cost .value { font-size: 26px; }
.card.unpriced { border-color: var(--alert); color: var(--alert); }
.chart { overflow-x: auto; }
.chart svg { display: block; }
.chart .axis { stroke: var(--ink); stroke-width: 1; }
.chart .grid { stroke: var(--line); stroke-width: 1; }
.chart text { font-size: 11px; fill: var(--muted); }
.chart .axis-title { font-size: 12px; fill: var(--ink); }
.chart .bar rect.fill { fill: var(--bar); }
.chart .bar.unpriced rect.fill { fill: var(--bar-unpriced); }
.chart .bar rect.hit { fill: transparent; }
.chart .bar:hover rect.fill { opacity: .75; }
.legend { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th.key, td.key { text-align: left; }
/*
 * Money first: cost and cost per image come right after the keys, so they must not be pushed out
 * of a 1280 px window by a long batch name or tag. A key longer than its column's width is cut
 * with an ellipsis (the whole text is its tooltip); a model id or a day fits whole.
 */
td.key .cut { display: inline-block; max-width: 13em; overflow: hidden; text-overflow: ellipsis; vertical-align: bottom; }
td.key-model .cut { max-width: 17em; }
th.money, td.money { font-weight: 600; }
/* A wide breakdown scrolls sideways (the token columns, last) rather than squeezing its key columns to a letter a line. */
.scroll { overflow-x: auto; }
thead th { border-bottom: 2px solid var(--ink); }
tfoot td { font-weight: 700; border-top: 2px solid var(--ink); border-bottom: none; }
td.unpriced { color: var(--alert); font-weight: 600; }
details { margin-top: 20px; }
summary { cursor: pointer; font-weight: 600; }
`;

/** The smallest 1, 2, 2.5 or 5 × 10^n at or above `value`: round numbers on the y axis. */
function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value * (1 - 1e-12)) return step * magnitude;
  return 10 * magnitude;
}

const usd = (value: number, decimals: number): string => formatUsd(BigInt(Math.round(value * 1e6)) * 1_000_000n, decimals);

/** Days between the first and the last, with the missing ones as empty bars (a gap is a fact). */
function continuousDays(daily: ReportGroup[]): { day: string; totals: Totals | undefined }[] {
  const known = new Map(daily.map((group) => [group.key.day ?? '', group as Totals]));
  const first = Date.parse(`${daily[0]?.key.day ?? ''}T00:00:00Z`);
  const last = Date.parse(`${daily[daily.length - 1]?.key.day ?? ''}T00:00:00Z`);
  const span = (last - first) / 86_400_000;
  // A stray date in a ledger (year 1970, say) must not make a chart of twenty thousand bars.
  if (Number.isNaN(span) || span > 3 * 366) return daily.map((group) => ({ day: group.key.day ?? '', totals: group }));
  const days: { day: string; totals: Totals | undefined }[] = [];
  for (let time = first; time <= last; time += 86_400_000) {
    const day = new Date(time).toISOString().slice(0, 10);
    days.push({ day, totals: known.get(day) });
  }
  return days;
}

/** Spend per day as inline SVG bars; each bar's figures are its tooltip (`<title>`). */
function renderChart(daily: ReportGroup[]): string {
  if (daily.length === 0) return '<p class="note">No ledger lines in this report, so no spend per day.</p>';
  const days = continuousDays(daily);
  const slot = days.length <= 14 ? 44 : days.length <= 62 ? 20 : days.length <= 200 ? 8 : 4;
  const left = 84;
  const right = 16;
  const top = 12;
  const plotHeight = 240;
  const bottom = 78;
  const plotWidth = days.length * slot;
  const width = left + plotWidth + right;
  const height = top + plotHeight + bottom;
  const max = niceCeiling(Math.max(...days.map(({ totals }) => totals?.costUsd ?? 0)));
  const decimals = max < 1 ? 4 : max < 100 ? 2 : 0;
  const y = (value: number): number => top + plotHeight - (value / max) * plotHeight;
  const parts: string[] = [];

  for (let tick = 0; tick <= 4; tick += 1) {
    const value = (max * tick) / 4;
    const at = y(value).toFixed(1);
    parts.push(`<line class="grid" x1="${left}" x2="${left + plotWidth}" y1="${at}" y2="${at}"/>`);
    parts.push(`<text x="${left - 6}" y="${at}" text-anchor="end" dominant-baseline="middle">${escapeHtml(usd(value, decimals))}</text>`);
  }

  // Day labels: as many as fit without overlapping (about one per 16 px, slanted).
  const labelEvery = Math.max(1, Math.ceil(16 / slot));
  days.forEach(({ day, totals }, index) => {
    const x = left + index * slot;
    const cost = totals?.costUsd ?? 0;
    const barTop = y(cost);
    const unpriced = (totals?.unpricedRequests ?? 0) > 0;
    const tip = totals
      ? `${day}: ${costText(totals)}, ${number(totals.requests)} requests, ${number(totals.images)} images${unpriced ? ` (${number(totals.unpricedRequests)} requests with NO PRICE not counted)` : ''}`
      : `${day}: $0, no requests`;
    parts.push(
      `<g class="bar${unpriced ? ' unpriced' : ''}"><title>${escapeHtml(tip)}</title>` +
        `<rect class="hit" x="${x}" y="${top}" width="${slot}" height="${plotHeight}"/>` +
        `<rect class="fill" x="${(x + slot * 0.15).toFixed(1)}" y="${barTop.toFixed(1)}" width="${(slot * 0.7).toFixed(1)}" height="${(top + plotHeight - barTop).toFixed(1)}"/></g>`,
    );
    if (index % labelEvery === 0) {
      const lx = x + slot / 2;
      const ly = top + plotHeight + 10;
      parts.push(`<text x="${lx.toFixed(1)}" y="${ly}" text-anchor="end" transform="rotate(-45 ${lx.toFixed(1)} ${ly})">${escapeHtml(day)}</text>`);
    }
  });

  parts.push(`<line class="axis" x1="${left}" x2="${left}" y1="${top}" y2="${top + plotHeight}"/>`);
  parts.push(`<line class="axis" x1="${left}" x2="${left + plotWidth}" y1="${top + plotHeight}" y2="${top + plotHeight}"/>`);
  parts.push(`<text class="axis-title" x="14" y="${top + plotHeight / 2}" text-anchor="middle" transform="rotate(-90 14 ${top + plotHeight / 2})">USD per day</text>`);
  parts.push(`<text class="axis-title" x="${left + plotWidth / 2}" y="${height - 6}" text-anchor="middle">day (UTC)</text>`);
  const anyUnpriced = days.some(({ totals }) => (totals?.unpricedRequests ?? 0) > 0);
  return (
    `<div class="chart"><svg role="img" aria-label="Spend per day in USD" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${parts.join('')}</svg></div>` +
    `<p class="legend">Hover a bar for its figures.${anyUnpriced ? ' Orange bars: days with requests of a model with no price, whose cost is not in the bar.' : ''}</p>`
  );
}

const COLUMNS: { title: string; value: (t: Totals) => string; money?: boolean }[] = [
  { title: 'cost', value: (t) => costText(t), money: true },
  { title: 'cost per image', value: (t) => costPerImageText(t), money: true },
  { title: 'requests', value: (t) => number(t.requests) },
  { title: 'images', value: (t) => number(t.images) },
  { title: 'failed answers', value: (t) => number(t.failedRows) },
  { title: 'prompt tokens', value: (t) => number(t.promptTokens) },
  { title: 'image tokens', value: (t) => number(t.imageOutputTokens) },
  { title: 'text tokens', value: (t) => number(t.textOutputTokens) },
  { title: 'thought tokens', value: (t) => number(t.thoughtsTokens) },
  { title: 'total tokens', value: (t) => number(t.totalTokens) },
];

const moneyClass = (column: { money?: boolean }): string => (column.money ? ' class="money"' : '');

/**
 * Longer keys may not fit their column: those are cut on one line, the whole text as their
 * tooltip. Shorter ones fit whatever their glyphs (13 CJK characters are 13em), so they are
 * written plain and the page stays small.
 */
const FITS = 12;

function keyCell(key: GroupKey, value: string): string {
  const text = escapeHtml(value);
  return value.length > FITS ? `<td class="key key-${key}"><span class="cut" title="${text}">${text}</span></td>` : `<td class="key key-${key}">${text}</td>`;
}

function tableRow(cells: string, t: Totals): string {
  let row = `<tr>${cells}`;
  for (const column of COLUMNS) row += `<td${moneyClass(column)}>${escapeHtml(column.value(t))}</td>`;
  return `${row}<td${t.unpricedRequests > 0 ? ' class="unpriced"' : ''}>${number(t.unpricedRequests)}</td></tr>`;
}

function* tableChunks(groups: ReportGroup[], by: GroupKey[], totals: Totals): Generator<string> {
  const head = [
    ...by.map((key) => `<th class="key" scope="col">${escapeHtml(KEY_TITLES[key])}</th>`),
    ...COLUMNS.map((column) => `<th scope="col"${moneyClass(column)}>${column.title}</th>`),
    '<th scope="col">requests with no price</th>',
  ];
  yield `<div class="scroll"><table><thead><tr>${head.join('')}</tr></thead><tbody>`;
  for (const group of groups) {
    let cells = '';
    for (const key of by) cells += keyCell(key, group.key[key] ?? '');
    yield tableRow(cells, group);
  }
  yield `</tbody><tfoot>${tableRow(`<td class="key"${by.length > 1 ? ` colspan="${by.length}"` : ''}>TOTAL</td>`, totals)}</tfoot></table></div>`;
}

function card(label: string, value: string, className = ''): string {
  return `<div class="card${className ? ` ${className}` : ''}"><div class="label">${escapeHtml(label)}</div><div class="value">${escapeHtml(value)}</div></div>`;
}

/** The page as one string. */
export function renderHtml(report: Report, options: HtmlReportOptions): string {
  return [...htmlChunks(report, options)].join('');
}

/** Approval rate and cost per approved image by model and shot: what a usable picture cost. */
function reviewSection(figures: ReviewFigures): string {
  const rate = (value: number | null): string => (value === null ? '-' : `${(value * 100).toFixed(1)}%`);
  const usd = (value: number | null): string => (value === null ? '-' : `$${value.toFixed(4)}`);
  const cells = (t: ApprovalTotals): string =>
    `<td class="money">${usd(t.costPerApprovedImageUsd)}</td><td>${rate(t.approvalRate)}</td><td>${t.approved}</td><td>${t.rejected}</td><td>${t.unreviewed}</td><td>${t.rows}</td><td class="money">${usd(t.costUsd)}</td>`;
  const head = ['per approved image', 'approval', 'approved', 'rejected', 'unreviewed', 'rows', 'cost'].map((title, i) => `<th scope="col"${i === 0 || i === 6 ? ' class="money"' : ''}>${title}</th>`).join('');
  const rows = figures.byModelShot.map((group) => `<tr><td class="key">${escapeHtml(group.key.model)}</td><td class="key">${escapeHtml(group.key.shot)}</td>${cells(group)}</tr>`).join('');
  return (
    `\n<h2>Review: cost per approved image</h2><p class="meta">${escapeHtml(figures.batches.join(', '))}: current decisions; the cost of every answer, rejected and regenerated ones included</p>` +
    `<div class="scroll"><table><thead><tr><th class="key" scope="col">model</th><th class="key" scope="col">shot</th>${head}</tr></thead><tbody>${rows}</tbody>` +
    `<tfoot><tr><td class="key" colspan="2">TOTAL</td>${cells(figures.totals)}</tr></tfoot></table></div>`
  );
}

/** The page in pieces, in order (see the header). */
export function* htmlChunks(report: Report, options: HtmlReportOptions): Generator<string> {
  const { by } = options;
  const totals = report.totals;
  const filters = [
    options.batch !== undefined ? `batch ${options.batch} (and its sub-batches)` : 'all batches',
    options.product !== undefined ? `product ${options.product}` : '',
    options.since !== undefined ? `since ${options.since}` : '',
    options.until !== undefined ? `until ${options.until}` : '',
    by.length > 0 ? `grouped by ${by.join(', ')}` : '',
  ].filter(Boolean);
  const generated = (options.generatedAt ?? new Date()).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');

  // NO PRICE first and loud: a model without a price makes every total below it too low.
  const noPrice = report.warnings.filter((warning) => warning.startsWith('NO PRICE'));
  const notes = report.warnings.filter((warning) => !warning.startsWith('NO PRICE'));
  const alerts =
    noPrice.length + notes.length > 0
      ? `<section class="alerts" role="alert">${noPrice.map((warning) => `<p class="alert">⚠ ${escapeHtml(warning)}</p>`).join('')}${notes
          .map((warning) => `<p class="note">${escapeHtml(warning)}</p>`)
          .join('')}</section>`
      : '';

  const cards = [
    card(totals.unpricedRequests > 0 ? 'total cost (priced requests only)' : 'total cost', costText(totals), 'cost'),
    card('cost per image', costPerImageText(totals), 'cost'),
    card('requests', number(totals.requests)),
    card('images', number(totals.images)),
    card('failed answers', number(totals.failedRows)),
    card('prompt tokens', number(totals.promptTokens)),
    card('image output tokens', number(totals.imageOutputTokens)),
    card('text output tokens', number(totals.textOutputTokens)),
    card('thought tokens', number(totals.thoughtsTokens)),
    card('total tokens', number(totals.totalTokens)),
    ...(totals.unpricedRequests > 0 ? [card('requests with NO PRICE', number(totals.unpricedRequests), 'unpriced')] : []),
  ];

  yield `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tokenhot-batch cost report</title>
<style>${CSS}</style>
</head>
<body>
<h1>Cost report</h1>
<p class="meta">${escapeHtml(filters.join(' · '))} · made ${escapeHtml(generated)}</p>
${alerts}
<section class="cards">${cards.join('')}</section>
<h2>Spend per day</h2>${renderChart(report.daily)}`;
  if (by.length > 0) {
    yield `\n<h2>By ${escapeHtml(by.join(', '))}</h2>`;
    yield* tableChunks(report.groups, by, totals);
  }
  if (report.reviews) yield reviewSection(report.reviews);
  // The day figures behind the chart, when the tables above do not already hold them.
  if (by.length !== 1 || by[0] !== 'day') {
    yield '\n<details><summary>Figures per day</summary>';
    yield* tableChunks(report.daily, ['day'], totals);
    yield '</details>';
  }
  yield '\n</body>\n</html>\n';
}
