/**
 * Error answers shaped like Google's (`{"error":{code,message,status,details}}`), so clients
 * are tested against the real shapes, RetryInfo and QuotaFailure included.
 */

export interface ErrorBody {
  error: { code: number; message: string; status: string; details?: Record<string, unknown>[] };
}

export interface ErrorAnswer {
  status: number;
  body: ErrorBody;
  headers?: Record<string, string>;
  kind: 'error' | 'rate-limited';
}

/** google.rpc.Code names for the HTTP codes the mock sends. */
const STATUS_NAMES: Readonly<Record<number, string>> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  402: 'PAYMENT_REQUIRED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  501: 'UNIMPLEMENTED',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

const MESSAGES: Readonly<Record<number, string>> = {
  400: 'Request contains an invalid argument.',
  401: 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
  402: 'Insufficient credits: your account balance is exhausted. Top up to continue.',
  403: 'The caller does not have permission.',
  404: 'Requested entity was not found.',
  500: 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
  502: 'Bad gateway.',
  503: 'The model is overloaded. Please try again later.',
  504: 'The service is currently unavailable.',
};

export function googleError(code: number, message?: string, details?: Record<string, unknown>[]): ErrorAnswer {
  const status = STATUS_NAMES[code] ?? (code >= 500 ? 'INTERNAL' : 'FAILED_PRECONDITION');
  const error: ErrorBody['error'] = { code, message: message ?? MESSAGES[code] ?? 'Error.', status };
  if (details) error.details = details;
  return { status: code, body: { error }, kind: code === 429 ? 'rate-limited' : 'error' };
}

export function invalidArgument(message: string): ErrorAnswer {
  return googleError(400, message);
}

export function unauthenticated(): ErrorAnswer {
  return googleError(
    401,
    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
  );
}

/** What Google answers for a wrong key: a 400, told apart from other 400s only by its reason. */
export function apiKeyInvalid(): ErrorAnswer {
  return googleError(400, 'API key not valid. Please pass a valid API key.', [
    { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com' },
  ]);
}

export function modelNotFound(model: string): ErrorAnswer {
  return googleError(
    404,
    `models/${model} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.`,
  );
}

/** Google writes delays as seconds with at most 3 decimals: "53s", "0.35s". */
export function formatRetryDelay(seconds: number): string {
  const millis = Math.max(0, Math.ceil(seconds * 1000));
  return `${Number((millis / 1000).toFixed(3))}s`;
}

export interface QuotaOptions {
  /** RetryInfo delay in seconds. */
  retryDelaySeconds: number;
  /** Daily quota: clients must not expect it to clear soon. */
  perDay?: boolean;
  /** Send `Retry-After: N` instead of RetryInfo (some proxies do). */
  retryAfterSeconds?: number;
}

export function quotaExceeded(options: QuotaOptions): ErrorAnswer {
  const quotaId = options.perDay
    ? 'GenerateRequestsPerDayPerProjectPerModel'
    : 'GenerateRequestsPerMinutePerProjectPerModel';
  const details: Record<string, unknown>[] = [
    {
      '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
      violations: [{ quotaMetric: 'generativelanguage.googleapis.com/generate_content_requests', quotaId }],
    },
  ];
  if (options.retryAfterSeconds === undefined) {
    details.push({
      '@type': 'type.googleapis.com/google.rpc.RetryInfo',
      retryDelay: formatRetryDelay(options.retryDelaySeconds),
    });
  }
  const answer = googleError(
    429,
    'You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.',
    details,
  );
  if (options.retryAfterSeconds !== undefined) answer.headers = { 'retry-after': String(options.retryAfterSeconds) };
  return answer;
}
