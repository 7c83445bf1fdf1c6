/**
 * What both providers' clients share of HTTP: one connection pool, the call itself (Bearer key,
 * timeout, an error answer made into an error kind with the key taken out), reading error bodies.
 */
import { Agent, request, type Dispatcher, type FormData } from 'undici';
import { redact, type CallError } from '../core/errors.js';
import { classifyNetworkError } from './http-errors.js';

/** Error bodies are small; a huge one is not worth holding. */
export const MAX_ERROR_BODY = 256 * 1024;

/**
 * A keep-alive pool to the endpoint: at least as many connections as calls in flight, and a long
 * timeout (4K images take well over a minute, from sending to the last byte).
 */
export function endpointAgent(options: { connections: number; timeoutMs: number }): Agent {
  return new Agent({
    connections: options.connections,
    keepAliveTimeout: 30_000,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    connect: { timeout: 30_000 },
  });
}

/** The body as text, up to `limit` bytes: an error body is small, a huge one is not worth holding. */
export async function readCapped(body: AsyncIterable<Buffer | Uint8Array> & { destroy(): void }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(Buffer.from(chunk));
    size += chunk.length;
    if (size >= limit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

export interface EndpointCall {
  agent: Agent;
  url: string;
  apiKey: string;
  /** JSON text, or a multipart form (undici sets its boundary). */
  body: string | FormData;
  timeoutMs: number;
  /** A shutdown's abort: it stays an abort, never a transient failure. */
  signal: AbortSignal | undefined;
  /** The provider's reading of an error answer. */
  classifyHttpError: (status: number, headers: Record<string, string | string[] | undefined>, bodyText: string) => CallError;
}

/** POSTs to the endpoint; resolves with a 200's response, throws an error kind for anything else. */
export async function postToEndpoint(call: EndpointCall): Promise<Dispatcher.ResponseData> {
  const timeout = AbortSignal.timeout(call.timeoutMs);
  let response: Dispatcher.ResponseData;
  try {
    response = await request(call.url, {
      method: 'POST',
      dispatcher: call.agent,
      signal: call.signal ? AbortSignal.any([call.signal, timeout]) : timeout,
      headers: {
        authorization: `Bearer ${call.apiKey}`,
        ...(typeof call.body === 'string' ? { 'content-type': 'application/json' } : {}),
        'user-agent': 'tokenhot-batch',
      },
      body: call.body,
    });
  } catch (error) {
    throw networkFailure(error, call.signal);
  }
  if (response.statusCode !== 200) {
    const text = await readCapped(response.body, MAX_ERROR_BODY).catch(() => '');
    // An endpoint may echo the Authorization header back ("invalid token Bearer sk-..."): the key
    // goes before its words reach any message, sidecar or log.
    throw call.classifyHttpError(response.statusCode, response.headers, redact(text, call.apiKey));
  }
  return response;
}

/** A failure to get (all of) an answer: a shutdown's abort stays an abort, anything else is transient. */
export function networkFailure(error: unknown, signal: AbortSignal | undefined, phase: 'connect' | 'body' = 'connect'): unknown {
  if (signal?.aborted) return signal.reason;
  return classifyNetworkError(error, phase);
}
