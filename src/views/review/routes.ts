/**
 * The review routes, mounted at `/review` by the local review server and by the dashboard:
 *
 *   GET  /review/                      the batches of the output folder
 *   GET  /review/<batch>               the grid (page.ts)
 *   GET  /review/<batch>/rows          the rows and their decisions, as JSON
 *   GET  /review/<batch>/image/<file>  an image file of the batch folder
 *   POST /review/<batch>/decisions     {rowId, decision, note?}: one line appended
 *
 * Access (basic auth, loopback) is the mounting app's; writes are checked here as well, stricter
 * than the dashboard's rule: a JSON body only (a cross-site form cannot send one without a CORS
 * preflight, which is never answered) and, when the browser names them, an Origin equal to the
 * page's own and a same-origin Sec-Fetch-Site.
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { UsageError } from '../../core/errors.js';
import { appendReview, batchFolder, checkedDecision, reviewableOutput, reviewerName } from '../../output/reviews.js';
import { batchesIn, readReviewRows, type ReviewRow } from './rows.js';
import { batchListPage, reviewPage } from './page.js';

export interface ReviewRouteOptions {
  out: string;
  /** The output folder of a batch when it may not be `out` (a job's `out:`, as the dashboard knows it). */
  outOf?: (batch: string) => Promise<string>;
  /** The user basic auth let in, when the app uses it. */
  authUser?: (request: Request) => string | undefined;
}

/** The page's rows: what the grid shows, without the whole sidecar. */
function pageRowsOf(rows: ReviewRow[]): object[] {
  return rows.map((row) => ({
    id: row.id,
    status: row.status,
    ...(row.reason !== undefined ? { reason: row.reason } : {}),
    prompt: row.prompt,
    model: row.model,
    images: row.images.map((image) => image.file),
    review: row.review,
    ...(row.decision ? { note: row.decision.note ?? '', who: row.decision.who, at: row.decision.at } : {}),
  }));
}

export function reviewRouter(options: ReviewRouteOptions): Router {
  const router = express.Router();
  router.get('/', (request, response, next) => listBatches(options.out, request.baseUrl, response).catch(next));
  router.get('/:batch', (request, response, next) => batchOut(options, request.params.batch!).then((out) => showBatch(out, request.params.batch!, request.baseUrl, response)).catch(next));
  router.get('/:batch/rows', (request, response, next) => batchOut(options, request.params.batch!).then((out) => sendRows(out, request.params.batch!, response)).catch(next));
  router.get('/:batch/image/:file', (request, response, next) => batchOut(options, request.params.batch!).then((out) => sendImage(out, request.params.batch!, request.params.file!, response)).catch(next));
  router.post('/:batch/decisions', sameSiteJsonOnly, express.json({ limit: '16kb' }), (request, response, next) =>
    recordDecision(options, request, response).catch(next),
  );
  router.use(answerErrors);
  return router;
}

/** The folder a batch is reviewed in; a batch whose job writes to a bucket is refused (400). */
async function batchOut(options: ReviewRouteOptions, batch: string): Promise<string> {
  return reviewableOutput(options.outOf ? await options.outOf(batch) : options.out);
}

async function listBatches(out: string, base: string, response: Response): Promise<void> {
  response.type('html').send(batchListPage(await batchesIn(out), base));
}

async function showBatch(out: string, batch: string, base: string, response: Response): Promise<void> {
  const rows = await readReviewRows(out, batch);
  const nonce = randomBytes(16).toString('base64');
  response.setHeader('Content-Security-Policy', `default-src 'none'; img-src 'self'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; connect-src 'self'; base-uri 'none'; form-action 'none'`);
  response.type('html').send(reviewPage(batch, pageRowsOf(rows), nonce, `${base}/${encodeURIComponent(batch)}`));
}

async function sendRows(out: string, batch: string, response: Response): Promise<void> {
  response.setHeader('Cache-Control', 'no-store');
  response.json(pageRowsOf(await readReviewRows(out, batch)));
}

/**
 * Only an image file by its bare name inside the batch folder: no path, no dot file, an image
 * type by name (sidecars and review files are never served). Not checked against the sidecars:
 * a page of 3,000 images would read every sidecar 3,000 times.
 */
async function sendImage(out: string, batch: string, file: string, response: Response): Promise<void> {
  if (!isImageName(file)) {
    response.status(404).type('text/plain').send('no such image in this batch\n');
    return;
  }
  response.sendFile(file, { root: batchFolder(out, batch), dotfiles: 'deny', headers: { 'Content-Type': mimeTypeOf(file), 'Cache-Control': 'no-cache' } });
}

const IMAGE_TYPES: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp', '.gif': 'image/gif' };

function isImageName(file: string): boolean {
  return file === basename(file) && !file.includes('\\') && !file.startsWith('.') && extname(file).toLowerCase() in IMAGE_TYPES;
}

function mimeTypeOf(file: string): string {
  return IMAGE_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

async function recordDecision(options: ReviewRouteOptions, request: Request, response: Response): Promise<void> {
  const batch = String(request.params.batch);
  const decision = checkedDecision((request.body ?? {}) as Record<string, unknown>);
  const out = await batchOut(options, batch);
  // The row's sidecar, not the whole batch: one file looked at per click.
  if (!(await hasSidecar(out, batch, decision.rowId))) {
    response.status(404).json({ error: `no row "${decision.rowId}" in batch ${batch}` });
    return;
  }
  const line = await appendReview(out, batch, { ...decision, who: reviewerName(options.authUser?.(request)) });
  response.json(line);
}

async function hasSidecar(out: string, batch: string, rowId: string): Promise<boolean> {
  if (rowId !== basename(rowId) || rowId.startsWith('.')) return false;
  return stat(join(batchFolder(out, batch), `${rowId}.json`)).then(
    (info) => info.isFile(),
    () => false,
  );
}

/** See the header: JSON only, and the page's own origin when the browser says where it is from. */
function sameSiteJsonOnly(request: Request, response: Response, next: NextFunction): void {
  const refuse = (why: string): void => void response.status(403).type('text/plain').send(`refused: ${why}\n`);
  if (!request.is('application/json')) return refuse('decisions are sent as application/json');
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return refuse(`a ${site} request`);
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== `${request.protocol}://${request.headers.host ?? ''}`) return refuse(`origin ${origin} is not this page's`);
  next();
}

function answerErrors(error: unknown, _request: Request, response: Response, next: NextFunction): void {
  if (response.headersSent) return next(error);
  if (error instanceof UsageError) {
    response.status(400).json({ error: error.message });
    return;
  }
  const status = (error as { status?: number }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    response.status(status).json({ error: (error as Error).message });
    return;
  }
  response.status(500).json({ error: (error as Error).message });
}
