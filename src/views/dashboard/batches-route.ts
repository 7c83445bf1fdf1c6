/**
 * The batches page as an Express handler: the status read from Redis, rendered with the rows
 * per minute seen since the dashboard started; a 503 page that retries while Redis is away.
 */
import type { Request, Response } from 'express';
import type { Queue } from 'bullmq';
import type { CatalogState } from '../../catalog/state.js';
import type { BatchState } from '../../queue/batch-state.js';
import { BatchRates, readStatus } from '../../queue/status.js';
import { escapeHtml } from '../gallery-html.js';
import { renderBatchesPage } from './batches-page.js';

/** The batches page runs no script and loads nothing: its policy says so. */
const PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'";

export interface BatchesRouteOptions {
  images: Queue;
  state: BatchState;
  catalogState: CatalogState;
  boardPath: string;
  refreshSeconds: number;
  failedLimit: number;
  warn: (message: string) => void;
}

export function batchesRoute(options: BatchesRouteOptions): (request: Request, response: Response) => Promise<void> {
  const rates = new BatchRates();
  return async (_request, response) => {
    response.setHeader('Content-Security-Policy', PAGE_POLICY);
    response.setHeader('Cache-Control', 'no-store');
    try {
      const status = await readStatus(options.images, options.state, options.catalogState, { failedLimit: options.failedLimit });
      response.type('html').send(renderBatchesPage(status, { boardPath: options.boardPath, refreshSeconds: options.refreshSeconds, generatedAt: new Date(), failedLimit: options.failedLimit, rates: rates.observe(status) }));
    } catch (error) {
      const message = (error as Error).message;
      options.warn(`batches page: ${message}`);
      response.status(503).type('html').send(redisUnavailablePage(message, options.refreshSeconds));
    }
  };
}

function redisUnavailablePage(message: string, refreshSeconds: number): string {
  const retry = refreshSeconds > 0 ? `<meta http-equiv="refresh" content="${refreshSeconds}">` : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">${retry}<title>Redis unavailable</title></head><body><h1>Redis is not answering</h1><p>${escapeHtml(message)}</p></body></html>\n`;
}
