/**
 * The review page: a grid of a batch's images, each with Approve and Reject (and a note), filters
 * with counts, and keys for going through it quickly (arrows, `a`, `r`). The rows travel as JSON
 * in the page; the script builds the grid with DOM calls (never HTML from data), so a prompt or
 * note cannot inject markup. A nonce CSP allows only this page's own script and style.
 */

/** `<` escaped, so no `</script>` in a prompt or note can end the data block. */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `
body{font:14px system-ui,sans-serif;margin:0;background:#f6f6f6;color:#222}
header{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:8px 16px;z-index:1}
h1{font-size:18px;margin:4px 0}
.filters button{margin-right:6px}
.filters button[aria-pressed=true]{font-weight:bold;background:#222;color:#fff}
.keys{color:#666;font-size:12px}
#grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:12px;padding:16px}
.card{background:#fff;border:2px solid #ddd;border-radius:6px;padding:8px;outline:none}
.card.selected{border-color:#1565c0;box-shadow:0 0 0 2px #90caf9}
.card[data-review=approved]{border-color:#2e7d32}
.card[data-review=rejected]{border-color:#c62828}
.card img{width:100%;height:auto;display:block;background:#eee}
.card .id{font-weight:bold}
.card .prompt{color:#444;font-size:12px;max-height:4.5em;overflow:hidden}
.card .state{font-size:12px}
.card input{width:100%;box-sizing:border-box;margin:4px 0}
.card .reason{color:#c62828;font-size:12px}
`;

const SCRIPT = `
const data = JSON.parse(document.getElementById('rows').textContent);
const base = document.body.dataset.base;
let rows = data;
let filter = 'all';
let selected = 0;
const grid = document.getElementById('grid');
const stateOf = (row) => (row.status === 'failed' ? 'failed' : row.review);
const visible = () => rows.filter((row) => filter === 'all' || stateOf(row) === filter);
function el(tag, props, children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children || []) node.append(child);
  return node;
}
function counts() {
  const c = { all: rows.length, unreviewed: 0, approved: 0, rejected: 0, failed: 0 };
  for (const row of rows) c[stateOf(row)]++;
  for (const [name, n] of Object.entries(c)) document.querySelector('[data-filter="' + name + '"] .count').textContent = String(n);
}
function card(row, index) {
  const node = el('article', { className: 'card' + (index === selected ? ' selected' : ''), tabIndex: -1, id: 'row-' + row.id });
  node.dataset.row = row.id;
  node.dataset.review = stateOf(row);
  for (const file of row.images) node.append(el('img', { src: base + '/image/' + encodeURIComponent(file), alt: row.id, loading: 'lazy' }));
  node.append(el('div', { className: 'id', textContent: row.id }), el('div', { className: 'prompt', textContent: row.prompt, title: row.prompt }));
  if (row.status === 'failed') {
    node.append(el('div', { className: 'reason', textContent: 'failed: ' + (row.reason || '') }));
    return node;
  }
  const state = row.review === 'unreviewed' ? 'unreviewed' : row.review + (row.note ? ': ' + row.note : '') + ' (' + row.who + ')';
  const note = el('input', { className: 'note', placeholder: 'note (why rejected)', value: row.note || '' });
  const approve = el('button', { className: 'approve', textContent: 'Approve (a)', type: 'button' });
  const reject = el('button', { className: 'reject', textContent: 'Reject (r)', type: 'button' });
  approve.addEventListener('click', () => decide(row.id, 'approved'));
  reject.addEventListener('click', () => decide(row.id, 'rejected'));
  node.addEventListener('click', (event) => { if (event.target.tagName !== 'INPUT' && event.target.tagName !== 'BUTTON') select(visible().indexOf(row)); });
  node.append(el('div', { className: 'state', textContent: state }), note, approve, reject);
  return node;
}
function render() {
  counts();
  for (const button of document.querySelectorAll('[data-filter]')) button.setAttribute('aria-pressed', String(button.dataset.filter === filter));
  const shown = visible();
  selected = Math.max(0, Math.min(selected, shown.length - 1));
  grid.replaceChildren(...shown.map(card));
}
function select(index) {
  const shown = visible();
  if (shown.length === 0) return;
  selected = Math.max(0, Math.min(index, shown.length - 1));
  for (const [i, node] of [...grid.children].entries()) node.classList.toggle('selected', i === selected);
  grid.children[selected].scrollIntoView({ block: 'nearest' });
}
async function decide(rowId, decision) {
  const node = document.getElementById('row-' + rowId);
  const note = node && node.querySelector('input.note') ? node.querySelector('input.note').value : '';
  const body = { rowId, decision };
  if (decision === 'rejected' && note.trim() !== '') body.note = note;
  const response = await fetch(base + '/decisions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const status = document.getElementById('status');
  if (!response.ok) { status.textContent = 'not saved: ' + (await response.text()); return; }
  const line = await response.json();
  const row = rows.find((r) => r.id === rowId);
  Object.assign(row, { review: line.decision, note: line.note || '', who: line.who, at: line.at });
  status.textContent = rowId + ' ' + line.decision;
  render();
}
function columns() {
  const cards = [...grid.children];
  if (cards.length === 0) return 1;
  const top = cards[0].offsetTop;
  return Math.max(1, cards.filter((node) => node.offsetTop === top).length);
}
document.addEventListener('keydown', (event) => {
  if (event.target.tagName === 'INPUT' || event.ctrlKey || event.metaKey || event.altKey) return;
  const shown = visible();
  const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns(), ArrowUp: -columns() };
  if (event.key in moves) { event.preventDefault(); select(selected + moves[event.key]); return; }
  const row = shown[selected];
  if (!row || row.status === 'failed') return;
  if (event.key === 'a') decide(row.id, 'approved');
  if (event.key === 'r') decide(row.id, 'rejected');
});
for (const button of document.querySelectorAll('[data-filter]')) button.addEventListener('click', () => { filter = button.dataset.filter; selected = 0; render(); });
render();
`;

const FILTERS = ['all', 'unreviewed', 'approved', 'rejected', 'failed'] as const;

export function reviewPage(batch: string, rows: object[], nonce: string, base: string): string {
  const filters = FILTERS.map((name) => `<button type="button" data-filter="${name}" aria-pressed="false">${name} <span class="count">0</span></button>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>review: ${escapeHtml(batch)}</title>
<style nonce="${nonce}">${STYLE}</style></head>
<body data-batch="${escapeHtml(batch)}" data-base="${escapeHtml(base)}">
<header><h1>Review: batch ${escapeHtml(batch)}</h1>
<div class="filters">${filters}</div>
<div class="keys">Keys: arrows move, <b>a</b> approve, <b>r</b> reject (with the note typed in the card). <span id="status" role="status"></span></div></header>
<main id="grid"></main>
<script type="application/json" id="rows">${jsonForScript(rows)}</script>
<script nonce="${nonce}">${SCRIPT}</script>
</body></html>
`;
}

export function batchListPage(batches: string[], base: string): string {
  const items = batches.map((batch) => `<li><a href="${escapeHtml(`${base}/${encodeURIComponent(batch)}`)}">${escapeHtml(batch)}</a></li>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>review</title></head>
<body><h1>Batches to review</h1><ul>${items || '<li>no batch with finished rows</li>'}</ul></body></html>
`;
}
