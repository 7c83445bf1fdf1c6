/**
 * The dashboard's batches page: what `tokenhot-batch status` prints, as plain server-rendered
 * HTML (no script). Every value from Redis (batch names, reasons, catalog names) is escaped.
 */
import type { QueueStatus } from '../../queue/status.js';
import { escapeHtml, exactUsd } from '../gallery-html.js';
import { formatUsd } from '../../cost/pricing.js';
import { REVIEW_PATH } from '../review/server.js';
import { isBucketUrl } from '../../output/location.js';

export interface BatchesPageOptions {
  /** Where Bull Board is mounted, for links to a queue's jobs. */
  boardPath: string;
  /** Seconds between reloads (a meta refresh); 0 for none. */
  refreshSeconds: number;
  generatedAt: Date;
  /** Failed rows listed per batch. */
  failedLimit: number;
  /** Rows per minute and time left per batch, since the dashboard first saw it (`BatchRates`). */
  rates?: Map<string, { perMinute: number; eta: string }>;
}

const STYLE = `
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 24px 32px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330; background: #f6f7f9; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 24px 0 8px; }
a { color: #1f57c3; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
.muted { color: #5b6475; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #d9dee7; padding: 4px 10px; text-align: right; vertical-align: top; }
th:first-child, td:first-child, td.text { text-align: left; }
tr.over td.over-budget, .bad { color: #b3261e; font-weight: 600; }
.alert { background: #fdecea; color: #b3261e; border: 1px solid #b3261e; border-radius: 6px; padding: 8px 12px; margin: 12px 0 0; }
.info { background: #eef3fc; border: 1px solid #b8c8ea; border-radius: 6px; padding: 8px 12px; margin: 12px 0 0; }
ul.reasons { margin: 4px 0 0; padding-left: 20px; }
ul.reasons li { overflow-wrap: anywhere; }
`;

const count = (value: number): string => value.toLocaleString('en-US');

function usd(pico: bigint, decimals: number): string {
  return `<span class="usd" data-usd="${exactUsd(pico)}" title="$${exactUsd(pico)}">${escapeHtml(formatUsd(pico, decimals))}</span>`;
}

/** The link to a queue's jobs of one state in Bull Board. */
export function boardLink(boardPath: string, queue: string, status?: string): string {
  return `${boardPath}/queue/${encodeURIComponent(queue)}${status ? `?status=${encodeURIComponent(status)}` : ''}`;
}

export function renderBatchesPage(status: QueueStatus, options: BatchesPageOptions): string {
  const alerts: string[] = [];
  if (status.paused) alerts.push(`The images queue is PAUSED${status.pauseReason ? `: ${escapeHtml(status.pauseReason)}` : ''}. Fix the cause, then <code>tokenhot-batch resume</code>.`);
  if (status.rateLimitedForMs > 0) alerts.push(`Rate limited: no call starts for ${(status.rateLimitedForMs / 1000).toFixed(1)} s.`);
  for (const batch of status.batches) {
    if (batch.overBudget > 0) {
      alerts.push(
        `Batch <code>${escapeHtml(batch.batch)}</code> is OVER BUDGET: ${count(batch.overBudget)} row(s) wait (<code>tokenhot-batch budget ${escapeHtml(batch.batch)} --usd MORE</code>).`,
      );
    }
  }
  const header = ['batch', 'rows', 'waiting', 'active', 'delayed', 'done', 'failed', 'over budget', 'spend', 'budget', 'rate/min', 'ETA'];
  const rows = status.batches.map((batch) => {
    const rate = options.rates?.get(batch.batch);
    return `<tr data-batch="${escapeHtml(batch.batch)}"${batch.overBudget > 0 ? ' class="over"' : ''}>
<td>${batch.failed > 0 ? `<a href="#batch-${escapeHtml(encodeURIComponent(batch.batch))}" title="its failed rows"><code>${escapeHtml(batch.batch)}</code></a>` : `<code>${escapeHtml(batch.batch)}</code>`}${batch.done > 0 && !(batch.output && isBucketUrl(batch.output)) ? ` <a class="review-link" href="${escapeHtml(`${REVIEW_PATH}/${encodeURIComponent(batch.batch)}`)}">review</a>` : ''}</td>
<td data-field="rows">${count(batch.rows)}</td>
<td data-field="waiting">${count(batch.waiting)}</td>
<td data-field="active">${count(batch.active)}</td>
<td data-field="delayed">${count(batch.delayed)}</td>
<td data-field="done">${count(batch.done)}</td>
<td data-field="failed"${batch.failed > 0 ? ' class="bad"' : ''}>${count(batch.failed)}</td>
<td data-field="over-budget" class="over-budget">${count(batch.overBudget)}</td>
<td data-field="spend">${usd(batch.spendPico, 4)}</td>
<td data-field="budget">${batch.budgetPico === undefined ? '<span class="muted">none</span>' : usd(batch.budgetPico, 2)}</td>
<td data-field="rate">${rate ? rate.perMinute.toFixed(1) : '-'}</td>
<td data-field="eta">${rate ? escapeHtml(rate.eta) : '-'}</td>
</tr>`;
  });
  const failedSections = status.batches
    .filter((batch) => batch.failed > 0)
    .map(
      (batch) => `<section class="failed" id="batch-${escapeHtml(encodeURIComponent(batch.batch))}" data-batch="${escapeHtml(batch.batch)}">
<h3>Failed rows of <code>${escapeHtml(batch.batch)}</code>${batch.failed > batch.failedRows.length ? ` (first ${count(batch.failedRows.length)} of ${count(batch.failed)})` : ` (${count(batch.failed)})`}</h3>
<ul class="reasons">${batch.failedRows
        .map((row) => `<li data-row="${escapeHtml(row.id)}"><code>${escapeHtml(row.id)}</code>: <span class="reason">${escapeHtml(row.reason)}</span></li>`)
        .join('')}</ul>
</section>`,
    );
  const catalogs = status.catalogs.map(
    (catalog) => `<section class="catalog" data-catalog="${escapeHtml(catalog.name)}">
<h3>Catalog job <code>${escapeHtml(catalog.name)}</code>, last firings</h3>
<ul>${catalog.runs
      .map(
        (run) =>
          `<li>${escapeHtml(run.firedAt)} <strong>${escapeHtml(run.status)}</strong>${run.reason ? ` (${escapeHtml(run.reason)})` : ''}: ${count(run.enqueued)} enqueued, ${count(run.unchanged)} unchanged, ${count(run.stillQueued)} still queued, ${count(run.rejected)} rejected → batch <code>${escapeHtml(run.batch)}</code>${
            run.rejectedRows.length > 0 ? `<ul>${run.rejectedRows.slice(0, 3).map((problem) => `<li>${escapeHtml(problem)}</li>`).join('')}</ul>` : ''
          }</li>`,
      )
      .join('')}</ul>
</section>`,
  );
  const board = escapeHtml(options.boardPath);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${options.refreshSeconds > 0 ? `<meta http-equiv="refresh" content="${options.refreshSeconds}">` : ''}
<title>tokenhot-batch: batches</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Batches</h1>
<p class="muted">As of ${escapeHtml(options.generatedAt.toISOString())}${options.refreshSeconds > 0 ? `, reloaded every ${options.refreshSeconds} s` : ''}. Queues, jobs, retries and failures in detail: <a href="${board}/" id="board-link">Bull Board</a> (<a href="${escapeHtml(boardLink(options.boardPath, 'images', 'failed'))}">failed image jobs</a>, <a href="${escapeHtml(boardLink(options.boardPath, 'catalog'))}">catalog firings</a>).</p>
${alerts.map((alert) => `<p class="alert">${alert}</p>`).join('\n')}
${
  status.batches.length === 0
    ? '<p class="info">No batches yet: <code>tokenhot-batch enqueue &lt;csv&gt; --batch NAME</code>.</p>'
    : `<table id="batches"><thead><tr>${header.map((title) => `<th>${title}</th>`).join('')}</tr></thead><tbody>
${rows.join('\n')}
</tbody></table>
<p class="muted">Spend is what every worker added up in Redis as answers were billed; <code>tokenhot-batch report --batch NAME</code> sums the ledger. Rows over budget wait, they have not failed. Rate and ETA are measured from when this dashboard first showed the batch.</p>`
}
${failedSections.length > 0 ? `<h2>Failed rows (up to ${count(options.failedLimit)} per batch)</h2>\n${failedSections.join('\n')}` : ''}
${catalogs.length > 0 ? `<h2>Catalog jobs</h2>\n${catalogs.join('\n')}` : ''}
</body>
</html>
`;
}
