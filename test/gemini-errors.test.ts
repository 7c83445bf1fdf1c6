/**
 * Error kinds are decided once, from the HTTP answer: what a runner will do depends on it.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { GeminiProvider } from '../src/providers/gemini/client.js';
import { classifyHttpError, classifyNetworkError, parseRetryAfter, parseRetryDelay } from '../src/providers/gemini/errors.js';

const quota = (quotaId: string, retryDelay?: string) =>
  JSON.stringify({
    error: {
      code: 429,
      message: 'Resource has been exhausted (e.g. check quota).',
      status: 'RESOURCE_EXHAUSTED',
      details: [
        { '@type': 'type.googleapis.com/google.rpc.QuotaFailure', violations: [{ quotaMetric: 'generate_content_requests', quotaId }] },
        ...(retryDelay ? [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay }] : []),
      ],
    },
  });

describe('retry delays', () => {
  it('reads RetryInfo durations, fractional seconds too', () => {
    expect(parseRetryDelay('53s')).toBe(53_000);
    expect(parseRetryDelay('0.35s')).toBe(350);
    expect(parseRetryDelay('1.0005s')).toBe(1001);
    expect(parseRetryDelay('soon')).toBeUndefined();
  });
  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    const now = Date.parse('2026-11-24T10:00:00Z');
    expect(parseRetryAfter('Tue, 24 Nov 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe('classifying HTTP answers', () => {
  it('429 with RetryInfo: rate limited for that long', () => {
    const error = classifyHttpError(429, {}, quota('GenerateRequestsPerMinutePerProjectPerModel', '53s'));
    expect(error.kind).toBe('rateLimited');
    expect(error.retryAfterMs).toBe(53_000);
    expect(error.perDay).toBe(false);
  });
  it('429 with a Retry-After header prefers the header', () => {
    const error = classifyHttpError(429, { 'retry-after': '7' }, quota('PerMinute', '53s'));
    expect(error.retryAfterMs).toBe(7000);
  });
  it('429 of a PerDay quota is flagged as such', () => {
    const error = classifyHttpError(429, {}, quota('GenerateRequestsPerDayPerProjectPerModel', '10s'));
    expect(error.kind).toBe('rateLimited');
    expect(error.perDay).toBe(true);
    expect(error.message).toContain('daily quota');
  });
  it('429 without any delay leaves the delay to the retry policy', () => {
    expect(classifyHttpError(429, {}, 'not json').retryAfterMs).toBeUndefined();
  });
  it.each([500, 502, 503, 504])('%i is transient', (status) => {
    expect(classifyHttpError(status, {}, JSON.stringify({ error: { code: status, status: 'UNAVAILABLE', message: 'overloaded' } })).kind).toBe('transient');
  });
  it('400 fails the row for good, but a bad key (API_KEY_INVALID) is fatal', () => {
    expect(classifyHttpError(400, {}, JSON.stringify({ error: { code: 400, status: 'INVALID_ARGUMENT', message: 'bad aspect' } })).kind).toBe('rowFailed');
    const badKey = classifyHttpError(
      400,
      {},
      JSON.stringify({ error: { code: 400, status: 'INVALID_ARGUMENT', message: 'API key not valid.', details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID' }] } }),
    );
    expect(badKey.kind).toBe('fatal');
    expect(badKey.message).toContain('TOKENHOT_API_KEY');
  });
  it('404 naming the model is a model the endpoint does not know (counted towards not sending its rows); another 404 is not', () => {
    const notFound = (message: string) => JSON.stringify({ error: { code: 404, status: 'NOT_FOUND', message } });
    const unknown = classifyHttpError(404, {}, notFound('models/gemini-4-pro-image is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.'));
    expect(unknown).toMatchObject({ kind: 'rowFailed', status: 404, modelNotFound: true });
    expect(unknown.message).toMatch(/^the endpoint does not know this model \(HTTP 404 NOT_FOUND: models\/gemini-4-pro-image is not found/);
    expect(classifyHttpError(404, {}, notFound('Requested entity was not found.'))).toMatchObject({ kind: 'rowFailed', modelNotFound: false });
  });
  it.each([
    [401, 'API key'],
    [402, 'credits'],
    [403, 'may not use'],
  ])('%i is fatal and says why', (status, words) => {
    const error = classifyHttpError(status, {}, '{}');
    expect(error.kind).toBe('fatal');
    expect(error.message).toContain(words);
  });
});

describe('classifying network failures', () => {
  it('connection resets and timeouts are transient', () => {
    expect(classifyNetworkError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })).kind).toBe('transient');
    const timeout = classifyNetworkError(Object.assign(new Error('Headers Timeout Error'), { code: 'UND_ERR_HEADERS_TIMEOUT' }));
    expect(timeout.kind).toBe('transient');
    expect(timeout.message).toContain('no answer in time');
    // A socket closed while the answer streams in is a body cut short, and says so.
    const cut = classifyNetworkError(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }), 'body');
    expect(cut).toMatchObject({ kind: 'transient', unreachable: false });
    expect(cut.message).toMatch(/^the answer was cut short \(UND_ERR_SOCKET/);
    // Nothing answered at all: the endpoint cannot be reached (counted towards stopping the run).
    expect(classifyNetworkError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })).unreachable).toBe(true);
  });
});

describe('an endpoint that echoes the key back', () => {
  it('never lets the key into the error (and so into a failed row, sidecar or log)', async () => {
    const key = 'sk-secret-LEAKME-7f3a';
    // A gateway that repeats the Authorization header in its error message.
    const server = createServer((request, response) => {
      response.writeHead(400, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: { code: 400, message: `invalid token ${request.headers.authorization}`, status: 'INVALID_ARGUMENT' } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const provider = new GeminiProvider({ baseUrl: `http://127.0.0.1:${port}`, apiKey: key, timeoutMs: 5000, responseModalities: ['TEXT', 'IMAGE'], connections: 1 });
    try {
      const row = { id: 'r', line: 2, prompt: 'p', model: 'gemini-2.5-flash-image', referenceImages: [], tags: [], metadata: {}, batch: 'b' };
      const error = (await provider.generate(row, { sink: { open: () => Promise.reject(new Error('no image expected')) } }).catch((e: unknown) => e)) as Error;
      expect(error.message).toContain('invalid token Bearer [redacted]');
      expect(error.message).not.toContain(key);
    } finally {
      await provider.close();
      server.close();
    }
  });
});
