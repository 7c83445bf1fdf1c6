/**
 * The gallery page's markup: one self-contained HTML file (inline CSS, a little inline script,
 * thumbnails as data: URIs), written a piece at a time by `gallery.ts` so that a batch of
 * thousands of rows never sits in memory as one string.
 *
 * Everything that comes from a CSV, a sidecar or the ledger goes through `escapeHtml`: a prompt
 * or a tag cannot put markup into the page. A Content-Security-Policy in the page itself allows
 * no fetch at all (only data: images, the inline style, and the one inline script by its hash),
 * so even a mistake here could not make the page load anything from anywhere. A bucket's page
 * (presigned links, no thumbnails) also allows images from the bucket's origin, and nothing else.
 */
import { createHash } from 'node:crypto';
import { formatUsd } from '../cost/pricing.js';
import type { Report } from '../cost/report.js';
import type { TokenCounts } from '../core/types.js';

/** Text → HTML text or attribute value (double- or single-quoted). Shared by the dashboard. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (char) => ESCAPES[char]!);
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Exact USD text of a picodollar amount (`0.0000018`), for data attributes and tooltips. */
export function exactUsd(pico: bigint): string {
  const negative = pico < 0n;
  const abs = negative ? -pico : pico;
  const fraction = (abs % 1_000_000_000_000n).toString().padStart(12, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${abs / 1_000_000_000_000n}${fraction ? `.${fraction}` : ''}`;
}

/** A USD amount as people read it, with the exact amount in a tooltip and a data attribute. */
function money(pico: bigint, decimals: number, attributes = ''): string {
  const exact = exactUsd(pico);
  return `<span class="usd" data-usd="${exact}" title="$${exact}"${attributes}>${escapeHtml(formatUsd(pico, decimals))}</span>`;
}

/** What the page shows of one row, taken from its sidecar (see `gallery.ts`). */
export interface GalleryRow {
  id: string;
  status: 'done' | 'failed';
  reason?: string;
  prompt: string;
  model: string;
  aspectRatio?: string;
  imageSize?: string;
  tags: string[];
  images: { file: string; mimeType: string; bytes: number }[];
  texts: string[];
  tokens?: TokenCounts;
  /** The sidecar's costUsd in picodollars; null when the model had no price, undefined when unbilled. */
  costPico: bigint | null | undefined;
  attempt: number;
  finishedAt?: string;
}

/**
 * A thumbnail made for one image of a row, the full image by a link (a bucket's presigned URL,
 * shown as it is), or why there is neither.
 */
export type Thumbnail =
  | { file: string; href: string; dataUri: string; width: number; height: number; sourceWidth?: number; sourceHeight?: number }
  | { file: string; href: string; linked: true }
  | { file: string; href: string; problem: string };

/** How the page shows images: thumbnails made from local files, or presigned links that expire. */
export type ImageShow = { kind: 'thumbnails'; width: number } | { kind: 'links'; hours: number; expiresAt: Date; origin: string };

export interface GalleryHead {
  batch: string;
  generatedAt: Date;
  /** The batch folder as given, for people. */
  folder: string;
  /** The ledger's figures for exactly this batch. */
  ledger: Report;
  /** Ledger lines that could not be read, with file and line. */
  ledgerWarnings: string[];
  rows: number;
  done: number;
  failed: number;
  images: number;
  /** Sum of the sidecars' costUsd, and how many sidecars had no cost (no price, or not billed). */
  rowCostPico: bigint;
  rowsWithoutPrice: number;
  /** Sidecars that could not be read, with their reason. */
  unreadable: string[];
  tags: { tag: string; rows: number }[];
  untagged: number;
  failedRows: GalleryRow[];
  show: ImageShow;
}

const STYLE = `
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6475; --line: #d9dee7; --bad: #b3261e; --bad-bg: #fdecea; --ok: #1e7b34; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #f6f7f9; }
header, nav, main, section, footer { padding: 0 24px; }
header { padding-top: 20px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 20px 0 8px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
.muted { color: var(--muted); }
.totals { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0 0; padding: 0; }
.totals div { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 140px; }
.totals dt { color: var(--muted); font-size: 12px; }
.totals dd { margin: 2px 0 0; font-size: 20px; font-weight: 600; }
.warning { background: var(--bad-bg); color: var(--bad); border: 1px solid var(--bad); border-radius: 6px; padding: 8px 12px; margin: 12px 0 0; }
.note { color: var(--muted); margin: 10px 0 0; max-width: 70em; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
td.reason { color: var(--bad); }
nav { position: sticky; top: 0; z-index: 1; background: #f6f7f9; border-bottom: 1px solid var(--line); padding-top: 10px; padding-bottom: 10px; margin-top: 16px; display: flex; gap: 16px; align-items: center; flex-wrap: wrap; }
select { font: inherit; padding: 2px 4px; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); gap: 14px; padding-top: 16px; padding-bottom: 24px; }
[hidden] { display: none !important; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px; display: flex; flex-direction: column; gap: 6px; min-width: 0; }
.card.failed { border-color: var(--bad); }
.card h3 { font-size: 14px; margin: 0; display: flex; justify-content: space-between; gap: 8px; }
.card h3 code { overflow-wrap: anywhere; }
.status { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; font-weight: 700; }
.status.done { color: var(--ok); }
.status.failed { color: var(--bad); }
.thumbs { display: flex; gap: 6px; flex-wrap: wrap; }
.thumbs img { max-width: 100%; height: auto; border-radius: 4px; background: #eee; display: block; }
.thumbs img.full { width: 256px; max-height: 320px; object-fit: contain; }
.nothumb { background: #eee; color: var(--muted); border-radius: 4px; padding: 24px 8px; text-align: center; flex: 1; }
.prompt { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 9em; overflow: auto; }
.reason { color: var(--bad); background: var(--bad-bg); border-radius: 4px; padding: 4px 8px; margin: 0; overflow-wrap: anywhere; }
.facts { display: grid; grid-template-columns: auto 1fr; gap: 0 10px; margin: 0; font-size: 12px; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.tags { display: flex; flex-wrap: wrap; gap: 4px; }
.tag { background: #e8ecf4; border-radius: 10px; padding: 0 8px; font-size: 12px; }
footer { color: var(--muted); padding-bottom: 24px; }
`;

/** Filters by status and tag; the only script, allowed by its hash in the page's policy. */
const SCRIPT = `(() => {
  const status = document.getElementById('filter-status');
  const tag = document.getElementById('filter-tag');
  const shown = document.getElementById('shown');
  const cards = Array.from(document.querySelectorAll('article.card'));
  const tagsOf = new Map(cards.map((card) => [card, JSON.parse(card.getAttribute('data-tags') || '[]')]));
  function apply() {
    const wantTag = tag.value === '' ? undefined : JSON.parse(tag.value);
    let count = 0;
    for (const card of cards) {
      const tags = tagsOf.get(card);
      const ok = (status.value === '' || card.getAttribute('data-status') === status.value) &&
        (wantTag === undefined || (wantTag === null ? tags.length === 0 : tags.includes(wantTag)));
      card.hidden = !ok;
      if (ok) count += 1;
    }
    shown.textContent = count + ' of ' + cards.length + ' rows shown';
  }
  status.addEventListener('change', apply);
  tag.addEventListener('change', apply);
  apply();
})();`;

const SCRIPT_HASH = createHash('sha256').update(SCRIPT).digest('base64');

/** The page's policy; a bucket's page may also load images from the bucket's origin (its links). */
function policyOf(show: ImageShow): string {
  const images = show.kind === 'links' ? `data: ${show.origin}` : 'data:';
  return `default-src 'none'; img-src ${images}; style-src 'unsafe-inline'; script-src 'sha256-${SCRIPT_HASH}'; base-uri 'none'; form-action 'none'`;
}

/** The sentence under the title that says how images are shown (and, for links, until when). */
function showText(show: ImageShow): string {
  if (show.kind === 'thumbnails') return `Thumbnails are ${show.width} px wide; click one for the full image.`;
  return `Images are the full objects in the bucket, by presigned links valid for ${show.hours} h, until ${show.expiresAt.toISOString()}; after that they no longer load (make the page again). No thumbnails are made: each image loads as it scrolls into view.`;
}

const count = (value: number): string => value.toLocaleString('en-US');

function fact(label: string, value: string, attributes = ''): string {
  return `<dt>${escapeHtml(label)}</dt><dd${attributes}>${value}</dd>`;
}

/** Everything before the first card: totals, warnings, failed rows, filters. */
export function renderHead(head: GalleryHead): string {
  const { ledger } = head;
  const totals = ledger.totals;
  const ledgerPico = BigInt(Math.round(totals.costUsd * 1e12));
  const warnings: string[] = [...ledger.warnings, ...head.ledgerWarnings.map((warning) => `ledger: ${warning}`), ...head.unreadable.map((problem) => `sidecar: ${problem}`)];
  const notes: string[] = [];
  // Both costs went through a float (the report's costUsd, the sidecars' costUsd): a nanodollar
  // of difference is rounding, while the smallest billed answer costs about a microdollar.
  const differ = ledgerPico - head.rowCostPico > 1_000n || head.rowCostPico - ledgerPico > 1_000n;
  if (differ || totals.images !== head.images) {
    notes.push(
      'The ledger counts every billed answer of this batch: a row billed more than once (tried again after a crash or a failed save, or re-run with --retry-failed) is in it each time, while a sidecar holds the cost of its last answer only. So the ledger total can be above the sum of the per-row costs.',
    );
  }
  if (head.rowsWithoutPrice > 0) notes.push(`${count(head.rowsWithoutPrice)} row(s) show no cost: not billed (refused before an answer), or a model without a price.`);
  const statusOptions = [
    `<option value="">all (${count(head.rows)})</option>`,
    `<option value="done">done (${count(head.done)})</option>`,
    `<option value="failed">failed (${count(head.failed)})</option>`,
  ];
  const tagOptions = [
    `<option value="">all tags</option>`,
    ...head.tags.map(({ tag, rows }) => `<option value="${escapeHtml(JSON.stringify(tag))}">${escapeHtml(tag)} (${count(rows)})</option>`),
    ...(head.untagged > 0 ? [`<option value="null">(no tag) (${count(head.untagged)})</option>`] : []),
  ];
  const failedTable =
    head.failedRows.length === 0
      ? '<p class="muted" id="no-failed">No failed rows.</p>'
      : `<table id="failed-table"><thead><tr><th>row</th><th>model</th><th>reason</th><th>cost</th></tr></thead><tbody>${head.failedRows
          .map(
            (row) =>
              `<tr data-row="${escapeHtml(row.id)}"><td><a href="#row-${escapeHtml(row.id)}"><code>${escapeHtml(row.id)}</code></a></td><td>${escapeHtml(row.model)}</td><td class="reason">${escapeHtml(row.reason ?? 'failed')}</td><td>${rowCost(row)}</td></tr>`,
          )
          .join('')}</tbody></table>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(policyOf(head.show))}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(`Gallery of batch ${head.batch}`)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>Batch <code id="batch-name">${escapeHtml(head.batch)}</code></h1>
<p class="muted">Made ${escapeHtml(head.generatedAt.toISOString())} from the sidecars in <code>${escapeHtml(head.folder)}</code> and the ledger. ${escapeHtml(showText(head.show))}</p>
<h2>From the ledger (what was billed)</h2>
<dl class="totals" id="ledger-totals">
<div>${fact('Images', count(totals.images), ' data-total="images"')}</div>
<div>${fact('Failed answers', count(totals.failedRows), ' data-total="failed"')}</div>
<div>${fact('Cost', `${money(ledgerPico, 4)}${totals.unpricedRequests > 0 ? ' + ?' : ''}`, ' data-total="cost"')}</div>
<div>${fact('Billed requests', count(totals.requests), ' data-total="requests"')}</div>
<div>${fact('Tokens', count(totals.totalTokens), ' data-total="tokens"')}</div>
</dl>
<h2>From the sidecars (this page)</h2>
<dl class="totals" id="row-totals">
<div>${fact('Rows', count(head.rows), ' data-rows="all"')}</div>
<div>${fact('Done', count(head.done), ' data-rows="done"')}</div>
<div>${fact('Failed', count(head.failed), ' data-rows="failed"')}</div>
<div>${fact('Images', count(head.images), ' data-rows="images"')}</div>
<div>${fact('Sum of per-row costs', money(head.rowCostPico, 4), ' data-rows="cost"')}</div>
</dl>
${warnings.map((warning) => `<p class="warning">${escapeHtml(warning)}</p>`).join('\n')}
${notes.map((note) => `<p class="note">${escapeHtml(note)}</p>`).join('\n')}
</header>
<section id="failed-rows">
<h2>Failed rows (${count(head.failed)})</h2>
${failedTable}
</section>
<nav>
<label>Status <select id="filter-status">${statusOptions.join('')}</select></label>
<label>Tag <select id="filter-tag">${tagOptions.join('')}</select></label>
<span id="shown" class="muted">${count(head.rows)} rows</span>
</nav>
<main id="cards">
`;
}

function rowCost(row: GalleryRow): string {
  if (row.costPico === undefined) return '<span class="muted">not billed</span>';
  if (row.costPico === null) return '<span class="muted">no price</span>';
  return money(row.costPico, 6);
}

function renderThumbnail(thumb: Thumbnail, id: string): string {
  if ('problem' in thumb) return `<div class="nothumb" data-file="${escapeHtml(thumb.file)}">${escapeHtml(thumb.problem)}</div>`;
  const alt = escapeHtml(`image ${thumb.file} of row ${id}`);
  if ('linked' in thumb) return `<a href="${escapeHtml(thumb.href)}" title="${escapeHtml(thumb.file)}"><img class="full" src="${escapeHtml(thumb.href)}" loading="lazy" decoding="async" alt="${alt}" data-file="${escapeHtml(thumb.file)}"></a>`;
  const source = thumb.sourceWidth && thumb.sourceHeight ? ` (${thumb.sourceWidth}×${thumb.sourceHeight})` : '';
  return `<a href="${escapeHtml(thumb.href)}" title="${escapeHtml(`${thumb.file}${source}`)}"><img src="${thumb.dataUri}" width="${thumb.width}" height="${thumb.height}" alt="${alt}" data-file="${escapeHtml(thumb.file)}"></a>`;
}

/** One row as a card. */
export function renderCard(row: GalleryRow, thumbnails: Thumbnail[]): string {
  const tokens = row.tokens;
  const pixels = thumbnails.find((thumb): thumb is Extract<Thumbnail, { dataUri: string }> => 'dataUri' in thumb && thumb.sourceWidth !== undefined);
  const facts = [
    fact('model', escapeHtml(row.model)),
    fact('size', `${escapeHtml(row.imageSize ?? 'default')}${pixels ? ` <span class="muted">(${pixels.sourceWidth}×${pixels.sourceHeight} px)</span>` : ''}`),
    fact('aspect ratio', escapeHtml(row.aspectRatio ?? 'default')),
    tokens
      ? fact(
          'tokens',
          `${count(tokens.totalTokens)} <span class="muted">(prompt ${count(tokens.promptTokens)}, image ${count(tokens.imageOutputTokens)}, text ${count(tokens.textOutputTokens)}, thinking ${count(tokens.thoughtsTokens)})</span>`,
          ' data-field="tokens"',
        )
      : fact('tokens', '<span class="muted">none</span>', ' data-field="tokens"'),
    fact('cost', rowCost(row), ' data-field="cost"'),
    fact('attempt', String(row.attempt)),
    ...(row.finishedAt ? [fact('finished', escapeHtml(row.finishedAt))] : []),
  ];
  const texts = row.texts.filter((text) => text.trim() !== '');
  return `<article class="card ${row.status}" id="row-${escapeHtml(row.id)}" data-status="${row.status}" data-tags="${escapeHtml(JSON.stringify(row.tags))}">
<h3><code>${escapeHtml(row.id)}</code><span class="status ${row.status}">${row.status}</span></h3>
${thumbnails.length > 0 ? `<div class="thumbs">${thumbnails.map((thumb) => renderThumbnail(thumb, row.id)).join('')}</div>` : ''}
${row.status === 'failed' ? `<p class="reason" data-field="reason">${escapeHtml(row.reason ?? 'failed')}</p>` : ''}
<p class="prompt" data-field="prompt">${escapeHtml(row.prompt)}</p>
${texts.length > 0 ? `<details><summary class="muted">text of the answer</summary><p class="prompt">${escapeHtml(texts.join('\n'))}</p></details>` : ''}
<dl class="facts">${facts.join('')}</dl>
${row.tags.length > 0 ? `<div class="tags">${row.tags.map((tag) => `<span class="tag">${escapeHtml(tag)}</span>`).join('')}</div>` : ''}
</article>
`;
}

/** Everything after the last card. */
export function renderFoot(summary: { thumbnails: number; links: number; problems: number }): string {
  const shown = summary.links > 0 ? `${count(summary.links)} image link(s)` : `${count(summary.thumbnails)} thumbnail(s)`;
  return `</main>
<footer>
<p>${shown}${summary.problems > 0 ? `; ${count(summary.problems)} image(s) could not be previewed (missing, or a format the thumbnailer cannot read)` : ''}. Made by tokenhot-batch gallery.</p>
</footer>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
