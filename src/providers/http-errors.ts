/**
 * What every provider reads the same way: a `Retry-After` header, and a failure to get an answer
 * at all (connection, timeout, body cut short) as an error kind.
 */
import { CallError } from '../core/errors.js';

/** `Retry-After` is either seconds or an HTTP date (RFC 9110). */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.ceil(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** Codes of a connection that was never made: wrong host or port, no network. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** Classifies a failure to get an answer at all (connection, timeout, body cut short). */
export function classifyNetworkError(error: unknown, phase: 'connect' | 'body' = 'connect'): CallError {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || (error as Error).name === 'TimeoutError';
  // A connection lost while the answer streams in is a body cut short, whatever the socket says.
  const summary = timeout ? 'no answer in time' : phase === 'body' ? 'the answer was cut short' : code && TRANSIENT_CODES.has(code) ? 'connection failed' : 'the call failed';
  return new CallError('transient', `${summary} (${code ?? (error as Error).name ?? 'error'}: ${message})`, {
    cause: error,
    reason: code,
    unreachable: code !== undefined && UNREACHABLE_CODES.has(code),
  });
}
