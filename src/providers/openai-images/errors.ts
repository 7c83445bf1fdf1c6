/**
 * The one place where the images endpoint's HTTP answers become error kinds. Errors come in the
 * OpenAI shape `{"error":{"message","type","param","code"}}` (read leniently: gateways send a
 * bare string, a numeric code, or another shape).
 */
import { CallError } from '../../core/errors.js';
import { parseRetryAfter } from '../http-errors.js';

interface OpenAiError {
  message?: string;
  type?: string;
  code?: string;
}

/** The error object of a body, whatever shape the gateway gave it. */
export function errorOf(bodyText: string): OpenAiError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bodyText);
  } catch {
    return bodyText.trim() ? { message: bodyText.trim() } : {};
  }
  const error = isObject(parsed) ? parsed.error : undefined;
  if (typeof error === 'string') return { message: error };
  const source = isObject(error) ? error : isObject(parsed) ? parsed : {};
  const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : typeof value === 'number' ? String(value) : undefined);
  return { message: text(source.message), type: text(source.type), code: text(source.code) };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Moderation refusals: OpenAI's, and Seedream's `Input/OutputImage/InputText...SensitiveContentDetected`. */
export function isRefusal(error: OpenAiError): boolean {
  const code = error.code ?? '';
  return code === 'moderation_blocked' || code === 'content_policy_violation' || /SensitiveContent/i.test(code);
}

/**
 * A gateway's limit in its own words: new-api says "您已达到请求数限制：1分钟内最多请求60次" (at
 * most 60 requests in 1 minute); OpenAI says "... Please try again in 20s". A named wait is
 * waited as it is. A named window is a quota, not a wait: the runners take M / N minutes as the
 * pace's ceiling (as with --rpm) and wait the policy's short default; waiting out the whole
 * window instead made the demo's 32 rows take 283 s rather than seconds.
 */
export function rateLimitHint(message: string): { retryAfterMs?: number; requests?: number; perMinutes?: number } {
  const window = /(\d+(?:\.\d+)?)\s*分钟内最多请求\s*(\d+)\s*次/.exec(message);
  if (window) {
    const minutes = Number(window[1]);
    return { requests: Number(window[2]), perMinutes: minutes };
  }
  const tryAgain = /try again in\s+((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)/i.exec(message);
  if (tryAgain) {
    let ms = 0;
    for (const [, amount, unit] of tryAgain[1]!.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) {
      ms += Number(amount) * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000);
    }
    return { retryAfterMs: Math.ceil(ms) };
  }
  return {};
}

function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Classifies an answer that is not a billed one: a non-200 status, or a 200 whose body is only an
 * error (some gateways answer so). `bodyText` is the (small, already redacted) error body.
 */
export function classifyHttpError(status: number, headers: Record<string, string | string[] | undefined>, bodyText: string): CallError {
  const error = errorOf(bodyText);
  const said = error.message?.slice(0, 300);
  const word = error.code ?? error.type;
  const describe = (summary: string): string => `${summary} (HTTP ${status}${word ? ` ${word}` : ''}${said ? `: ${said}` : ''})`;

  if (status === 429 || error.code === 'rate_limit_exceeded') {
    const hint = rateLimitHint(error.message ?? bodyText);
    const retryAfterMs = parseRetryAfter(headerValue(headers, 'retry-after')) ?? hint.retryAfterMs;
    const namedQuota = hint.requests !== undefined && hint.perMinutes ? hint.requests / (hint.perMinutes * 60) : undefined;
    const quota = hint.requests !== undefined ? `at most ${hint.requests} requests in ${hint.perMinutes} min` : 'rate limited';
    return new CallError('rateLimited', describe(quota), { status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}), ...(namedQuota ? { namedQuota } : {}), reason: word ?? 'rate_limited' });
  }
  if (error.code === 'insufficient_quota' || error.code === 'insufficient_user_quota' || status === 402) {
    return new CallError('fatal', describe('no credits left on the account'), { status, reason: word });
  }
  if (status === 401 || error.code === 'invalid_api_key') {
    return new CallError('fatal', describe('the API key was refused: check TOKENHOT_API_KEY'), { status, reason: 'API_KEY_INVALID' });
  }
  if (isRefusal(error)) return new CallError('rowFailed', describe('refused by moderation'), { status, reason: error.code });
  // new-api answers an id it has no channel for with `model_not_found` under 503, others with 404.
  if (error.code === 'model_not_found' || (status === 404 && /model/i.test(said ?? ''))) {
    return new CallError('rowFailed', describe('the endpoint does not know this model'), { status: 404, reason: 'model_not_found', modelNotFound: true });
  }
  if (status === 403) return new CallError('fatal', describe('the API key may not use this endpoint or model'), { status, reason: word });
  if (status === 408 || status === 409 || status >= 500) return new CallError('transient', describe('the endpoint failed'), { status, reason: word });
  if (status === 200) return new CallError('transient', describe('the endpoint answered with an error'), { status, reason: word });
  if (status === 404) return new CallError('rowFailed', describe('the endpoint does not know this path'), { status, reason: word });
  return new CallError('rowFailed', describe('the request was refused'), { status, reason: word });
}
