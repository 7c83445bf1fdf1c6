/**
 * The review page without Redis: the review routes alone, on 127.0.0.1, with the dashboard's
 * access rules (basic auth when TOKENHOT_DASHBOARD_USER/PASSWORD are set, else only requests
 * addressed to a loopback name; changes only from its own pages).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Request } from 'express';
import { UsageError } from '../../core/errors.js';
import { basicAuth, loopbackHostOnly, sameOriginChanges, type Credentials } from '../dashboard/access.js';
import { reviewRouter } from './routes.js';

export const REVIEW_PATH = '/review';
const HOST = '127.0.0.1';

export interface ReviewServerOptions {
  out: string;
  port: number;
  credentials?: Credentials;
}

export interface ReviewServer {
  /** `http://127.0.0.1:port`, with the port actually listened on. */
  url: string;
  close(): Promise<void>;
}

/** The user of a request that basic auth let in (the header was checked before the routes). */
export function basicAuthUser(request: Request): string | undefined {
  const match = (request.headers.authorization ?? '').match(/^Basic\s+([A-Za-z0-9+/=]+)\s*$/i);
  if (!match) return undefined;
  const given = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = given.indexOf(':');
  return colon > 0 ? given.slice(0, colon) : undefined;
}

export async function startReviewServer(options: ReviewServerOptions): Promise<ReviewServer> {
  const app = express();
  app.disable('x-powered-by');
  app.use((_request, response, next) => {
    response.setHeader('X-Frame-Options', 'DENY');
    response.setHeader('X-Content-Type-Options', 'nosniff');
    response.setHeader('Referrer-Policy', 'no-referrer');
    next();
  });
  app.use(options.credentials ? basicAuth(options.credentials) : loopbackHostOnly());
  app.use(sameOriginChanges());
  app.use(REVIEW_PATH, reviewRouter({ out: options.out, ...(options.credentials ? { authUser: basicAuthUser } : {}) }));
  app.get('/', (_request, response) => response.redirect(`${REVIEW_PATH}/`));
  const server: Server = app.listen(options.port, HOST);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new UsageError(`port ${options.port} on ${HOST} is in use: choose another with --port`) : error),
    );
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${HOST}:${port}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
