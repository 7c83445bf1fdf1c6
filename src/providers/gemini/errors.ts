/**
 * The one place where Gemini's HTTP answers and network failures become error kinds.
 */
import { CallError } from '../../core/errors.js';
import { parseRetryAfter } from '../http-errors.js';

// Shared with the images endpoint; exported here too, as they always were.
export { classifyNetworkError, parseRetryAfter } from '../http-errors.js';

interface ErrorDetail {
  '@type'?: string;
  reason?: string;
  retryDelay?: string;
  violations?: { quotaId?: string; quotaMetric?: string }[];
}

interface ErrorBody {
  error?: { code?: number; message?: string; status?: string; details?: ErrorDetail[] };
}

/** `"53s"`, `"0.35s"`, `"1.5s"` (protobuf Duration as JSON) → milliseconds. */
export function parseRetryDelay(value: string | undefined): number | undefined {
  const match = value?.trim().match(/^(\d+(?:\.\d+)?)s$/);
  return match ? Math.ceil(Number(match[1]) * 1000) : undefined;
}

function parseBody(text: string): ErrorBody {
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed && typeof parsed === 'object' ? (parsed as ErrorBody) : {};
  } catch {
    return {};
  }
}

function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Classifies a non-200 answer. `bodyText` is the (small) error body. */
export function classifyHttpError(status: number, headers: Record<string, string | string[] | undefined>, bodyText: string): CallError {
  const body = parseBody(bodyText);
  const details = body.error?.details ?? [];
  const word = body.error?.status;
  const providerMessage = body.error?.message?.slice(0, 300);
  const describe = (summary: string): string => `${summary} (HTTP ${status}${word ? ` ${word}` : ''}${providerMessage ? `: ${providerMessage}` : ''})`;
  const infoReasons = details.map((detail) => detail.reason).filter((reason): reason is string => Boolean(reason));

  if (status === 429) {
    const retryInfo = details.find((detail) => detail['@type']?.endsWith('google.rpc.RetryInfo'));
    const quotaIds = details.flatMap((detail) => detail.violations ?? []).map((violation) => violation.quotaId ?? '');
    const perDay = quotaIds.some((id) => id.includes('PerDay'));
    const retryAfterMs = parseRetryAfter(headerValue(headers, 'retry-after')) ?? parseRetryDelay(retryInfo?.retryDelay);
    return new CallError('rateLimited', describe(perDay ? 'daily quota exhausted' : 'rate limited'), {
      status,
      retryAfterMs,
      perDay,
      reason: word ?? 'RESOURCE_EXHAUSTED',
    });
  }
  if (infoReasons.includes('API_KEY_INVALID') || status === 401) {
    return new CallError('fatal', describe('the API key was refused: check TOKENHOT_API_KEY'), { status, reason: 'API_KEY_INVALID' });
  }
  if (status === 402) return new CallError('fatal', describe('no credits left on the account'), { status, reason: word });
  if (status === 403) return new CallError('fatal', describe('the API key may not use this endpoint or model'), { status, reason: word });
  if (status === 408 || status === 409 || status >= 500) {
    return new CallError('transient', describe('the endpoint failed'), { status, reason: word });
  }
  if (status === 404) {
    // Google's words: "models/X is not found for API version v1beta, or is not supported ...".
    const modelNotFound = /\bmodels?\b/i.test(providerMessage ?? '') && /not (?:be )?(?:found|supported)/i.test(providerMessage ?? '');
    return new CallError('rowFailed', describe(modelNotFound ? 'the endpoint does not know this model' : 'the endpoint does not know this model or path'), { status, reason: word, modelNotFound });
  }
  return new CallError('rowFailed', describe('the request was refused'), { status, reason: word });
}
