/**
 * The operators' dashboard: Bull Board for the `images` and `catalog` queues (jobs, failures,
 * retries) at `/queues`, and the batches page (what `status` prints) at `/`.
 *
 * One Redis connection serves both. It is opened the producer's way, so a dead Redis at start is
 * a clear error within seconds; after that it reconnects for as long as Redis is away, while
 * commands fail at once instead of waiting (no offline queue): a page asked for during an outage
 * answers 503 instead of hanging, and the dashboard is back when Redis is.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import express, { type Express, type Request, type Response, type Router } from 'express';
import type { Redis } from 'ioredis';
import { BatchState } from '../../queue/batch-state.js';
import { CatalogState } from '../../catalog/state.js';
import { UsageError } from '../../core/errors.js';
import { connectRedis, imagesQueue, type QueueSettings } from '../../queue/queue.js';
import { catalogQueue } from '../../catalog/schedule.js';
import { basicAuth, loopbackHostOnly, sameOriginChanges, type Credentials } from './access.js';
import { batchesRoute } from './batches-route.js';
import { loadConfig } from '../../core/config.js';
import { reviewRouter } from '../review/routes.js';
import { basicAuthUser, REVIEW_PATH } from '../review/server.js';

export const BOARD_PATH = '/queues';

export interface DashboardOptions {
  settings: QueueSettings;
  host: string;
  port: number;
  /** Basic auth; none only on a loopback host (the command checks). */
  credentials?: Credentials;
  /** Reload of the batches page, in seconds; 0 for none. */
  refreshSeconds: number;
  /** Failed rows listed per batch. */
  failedLimit: number;
  /** The output folder whose batches `/review/<batch>` shows; default TOKENHOT_OUT_DIR, ./output. */
  outDir?: string;
  /** Redis trouble while running (reconnects, failed reads), for the operator's terminal. */
  onWarning?: (message: string) => void;
}

export interface Dashboard {
  /** `http://host:port`, with the port actually listened on (`--port 0` picks a free one). */
  url: string;
  close(): Promise<void>;
}

/** Headers for every answer: no framing (Bull Board has buttons), no MIME sniffing, no referrer. */
function commonHeaders(_request: Request, response: Response, next: () => void): void {
  response.setHeader('X-Frame-Options', 'DENY');
  response.setHeader('X-Content-Type-Options', 'nosniff');
  response.setHeader('Referrer-Policy', 'no-referrer');
  next();
}

export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const warn = options.onWarning ?? (() => undefined);
  const { connection, onRedisError } = await connectDashboardRedis(options.settings.redisUrl, warn);
  const images = imagesQueue(options.settings, connection);
  const catalog = catalogQueue(options.settings, connection);
  const queues: Queue[] = [images, catalog];
  // A Queue re-emits its connection's errors; an 'error' event without a listener would end the process.
  for (const queue of queues) queue.on('error', onRedisError);
  const release = async (): Promise<void> => {
    await Promise.all(queues.map((queue) => queue.close().catch(() => undefined)));
    connection.disconnect();
  };

  const app = createApp(options, images, catalog, connection, warn);
  const server: Server = app.listen(options.port, options.host);
  try {
    await listening(server, options);
  } catch (error) {
    await release();
    throw error;
  }
  server.on('error', (error) => warn(`server: ${error.message}`));
  return dashboardOf(server, release);
}

/**
 * The one Redis connection, opened the producer's way; see the header for why it then keeps
 * reconnecting. `onRedisError` warns once per distinct error.
 */
async function connectDashboardRedis(
  redisUrl: string,
  warn: (message: string) => void,
): Promise<{ connection: Redis; onRedisError: (error: Error) => void }> {
  const connection = await connectRedis(redisUrl, 'producer');
  // See the header: keep reconnecting after a successful start (the producer's way gives up).
  connection.options.retryStrategy = (times: number) => Math.min(times * 500, 5_000);
  let lastWarning = '';
  const onRedisError = (error: Error): void => {
    // A Redis away for a minute would otherwise print the same line every reconnect.
    if (error.message !== lastWarning) warn(`Redis: ${error.message}`);
    lastWarning = error.message;
  };
  connection.on('error', onRedisError);
  connection.on('ready', () => (lastWarning = ''));
  return { connection, onRedisError };
}

/** Bull Board over both queues, mounted at BOARD_PATH. */
function createBoard(images: Queue, catalog: Queue): ExpressAdapter {
  const board = new ExpressAdapter();
  board.setBasePath(BOARD_PATH);
  createBullBoard({
    queues: [
      new BullMQAdapter(images, { description: 'one job per row: <batch>/<row id>', allowRetries: true }),
      new BullMQAdapter(catalog, { description: 'catalog job firings', allowRetries: true }),
    ],
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'tokenhot-batch', miscLinks: [{ text: 'Batches', url: '/' }] } },
  });
  return board;
}

/** The access checks, then the batches page and Bull Board. */
function createApp(options: DashboardOptions, images: Queue, catalog: Queue, connection: Redis, warn: (message: string) => void): Express {
  const state = new BatchState(connection, options.settings.prefix);
  const catalogState = new CatalogState(connection, options.settings.prefix);
  const board = createBoard(images, catalog);

  const app = express();
  app.disable('x-powered-by');
  app.use(commonHeaders);
  if (options.credentials) app.use(basicAuth(options.credentials));
  else app.use(loopbackHostOnly());
  app.use(sameOriginChanges());

  const batchesPage = batchesRoute({
    images,
    state,
    catalogState,
    boardPath: BOARD_PATH,
    refreshSeconds: options.refreshSeconds,
    failedLimit: options.failedLimit,
    warn,
  });
  app.get('/', batchesPage);
  app.get('/batches', batchesPage);
  // getRouter() is typed `any` by Bull Board; it is an Express router.
  app.use(BOARD_PATH, board.getRouter() as Router);
  // A batch of a job with its own output (`out:`) is reviewed there, as its meta says; the rest
  // in the output folder, also while Redis is away.
  const out = options.outDir ?? loadConfig({}).outDir;
  const outOf = async (batch: string): Promise<string> => (await state.output(batch).catch(() => undefined)) ?? out;
  app.use(REVIEW_PATH, reviewRouter({ out, outOf, ...(options.credentials ? { authUser: basicAuthUser } : {}) }));
  return app;
}

/** Resolves once the server listens; a port in use or a host not of this machine is the user's error. */
function listening(server: Server, options: DashboardOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      reject(
        error.code === 'EADDRINUSE'
          ? new UsageError(`port ${options.port} on ${options.host} is in use: choose another with --port`)
          : error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND'
            ? new UsageError(`--host ${options.host} is not an address of this machine`)
            : error,
      );
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
  });
}

function dashboardOf(server: Server, release: () => Promise<void>): Dashboard {
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Browsers keep connections open (keep-alive, Bull Board's polling): drop them.
        server.closeAllConnections();
        await closed;
        await release();
      })();
      return closing;
    },
  };
}
