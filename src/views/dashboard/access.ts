/**
 * Who may use the dashboard. Bull Board can retry, clean and even obliterate queues, so:
 *
 * - Basic auth from TOKENHOT_DASHBOARD_USER / TOKENHOT_DASHBOARD_PASSWORD when both are set.
 * - Without them, only a loopback address may be listened on (the caller refuses the rest).
 *   Loopback alone does not stop a web page in the operator's browser from reaching the
 *   dashboard: a DNS-rebinding page would reach it under its own host name, so without auth
 *   only requests addressed to a loopback name are served.
 * - Requests that change something must come from the dashboard's own pages: a browser sends
 *   basic-auth credentials with cross-site requests too, and Bull Board's JSON API would act on
 *   a forged one.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { UsageError } from '../../core/errors.js';

export interface Credentials {
  user: string;
  password: string;
}

/** Credentials from the environment: both or neither. */
export function credentialsFromEnv(env: NodeJS.ProcessEnv = process.env): Credentials | undefined {
  const user = env.TOKENHOT_DASHBOARD_USER ?? '';
  const password = env.TOKENHOT_DASHBOARD_PASSWORD ?? '';
  if (user === '' && password === '') return undefined;
  if (user === '' || password === '') throw new UsageError('set both TOKENHOT_DASHBOARD_USER and TOKENHOT_DASHBOARD_PASSWORD for basic auth, or neither');
  if (user.includes(':')) throw new UsageError('TOKENHOT_DASHBOARD_USER may not hold ":" (basic auth separates user and password with it)');
  return { user, password };
}

function isLoopbackAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '').toLowerCase();
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (bare === '::1') return true;
  const mapped = bare.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/);
  return mapped !== null && mapped[1]!.startsWith('127.');
}

/** True when every address `host` stands for is a loopback one (`localhost` is looked up). */
export async function isLoopbackHost(host: string): Promise<boolean> {
  if (host === '') return false;
  if (isIP(host.replace(/^\[|\]$/g, '')) !== 0) return isLoopbackAddress(host);
  const addresses = await lookup(host, { all: true }).catch(() => []);
  return addresses.length > 0 && addresses.every((entry) => isLoopbackAddress(entry.address));
}

/** The host name of a Host header or an Origin's host (`[::1]:3100` → `::1`). */
function hostName(value: string): string {
  const bracketed = value.match(/^\[([^\]]+)\]/);
  if (bracketed) return bracketed[1]!.toLowerCase();
  return value.replace(/:\d+$/, '').toLowerCase();
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Basic auth, compared in constant time (digests, so the lengths match too). */
export function basicAuth(credentials: Credentials): RequestHandler {
  const expected = digest(`${credentials.user}:${credentials.password}`);
  return (request: Request, response: Response, next: NextFunction): void => {
    const header = request.headers.authorization ?? '';
    const match = header.match(/^Basic\s+([A-Za-z0-9+/=]+)\s*$/i);
    const given = match ? Buffer.from(match[1]!, 'base64').toString('utf8') : '';
    if (match && timingSafeEqual(digest(given), expected)) {
      next();
      return;
    }
    response.setHeader('WWW-Authenticate', 'Basic realm="tokenhot-batch dashboard", charset="UTF-8"');
    response.status(401).type('text/plain').send('authentication required\n');
  };
}

/** Without auth: only requests addressed to a loopback name (see the header). */
export function loopbackHostOnly(): RequestHandler {
  return (request: Request, response: Response, next: NextFunction): void => {
    const host = hostName(request.headers.host ?? '');
    if (host === 'localhost' || isLoopbackAddress(host)) {
      next();
      return;
    }
    response.status(403).type('text/plain').send('this dashboard answers only to localhost, 127.0.0.1 or [::1]\n');
  };
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Changes only from the dashboard's own pages (see the header). */
export function sameOriginChanges(): RequestHandler {
  return (request: Request, response: Response, next: NextFunction): void => {
    if (SAFE_METHODS.has(request.method)) {
      next();
      return;
    }
    const origin = request.headers.origin;
    const site = request.headers['sec-fetch-site'];
    let sameOrigin = site === undefined || site === 'same-origin' || site === 'none';
    if (origin !== undefined) {
      try {
        sameOrigin = origin !== 'null' && new URL(origin).host === request.headers.host;
      } catch {
        sameOrigin = false;
      }
    }
    if (sameOrigin) {
      next();
      return;
    }
    response.status(403).type('text/plain').send('changes are accepted only from the dashboard\'s own pages\n');
  };
}
