/**
 * Error kinds, decided once where a provider's answer is read. Runners act on the kind, never on
 * HTTP status codes.
 *
 * - rateLimited: the provider's quota is used up for now; wait `retryAfterMs`, do not count an attempt.
 * - transient: 5xx, connection reset, timeout, a body cut short; retry with backoff.
 * - rowFailed: this row can never succeed as asked (400, unknown model, blocked prompt, no image).
 * - fatal: no row can succeed (bad key, no credits, no permission); stop taking rows.
 */
export type ErrorKind = 'rateLimited' | 'transient' | 'rowFailed' | 'fatal';

export interface CallErrorDetails {
  status?: number;
  /** How long the provider asked us to wait (Retry-After or RetryInfo.retryDelay). */
  retryAfterMs?: number;
  /** A per-day quota: it will not clear for hours. */
  perDay?: boolean;
  /** The provider's status word, e.g. RESOURCE_EXHAUSTED, API_KEY_INVALID. */
  reason?: string;
  /** No connection could be made at all (refused, no such host): nothing was sent or billed. */
  unreachable?: boolean;
  /** The endpoint said it does not know the model (not merely a 404 of some path). */
  modelNotFound?: boolean;
  /** A 429 that names its quota ("at most M requests in N minutes"), in calls per second. */
  namedQuota?: number;
  cause?: unknown;
}

export class CallError extends Error {
  readonly kind: ErrorKind;
  readonly status?: number;
  readonly retryAfterMs?: number;
  readonly perDay: boolean;
  readonly reason?: string;
  readonly unreachable: boolean;
  readonly modelNotFound: boolean;
  readonly namedQuota?: number;

  constructor(kind: ErrorKind, message: string, details: CallErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'CallError';
    this.kind = kind;
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
    this.perDay = details.perDay ?? false;
    this.reason = details.reason;
    this.unreachable = details.unreachable ?? false;
    this.modelNotFound = details.modelNotFound ?? false;
    this.namedQuota = details.namedQuota;
  }
}

/** Bad usage, bad configuration or a rejected file: the CLI exits with status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function isCallError(error: unknown): error is CallError {
  return error instanceof CallError;
}

/**
 * Any failure of a row attempt as an error kind. Failures that are not the provider's: a full
 * disk or a read-only folder stops the run (no row can be saved); anything else is retried.
 */
export function asCallError(error: unknown): CallError {
  if (error instanceof CallError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS' || code === 'EACCES' || code === 'EPERM') {
    return new CallError('fatal', `cannot write outputs: ${(error as Error).message}`, { cause: error });
  }
  return new CallError('transient', error instanceof Error ? error.message : String(error), { cause: error });
}

/** Removes anything that looks like the API key from a message, as a last line of defence. */
export function redact(text: string, secret: string | undefined): string {
  // Trimmed as the configuration trims it: a key exported with a stray space or CR is sent (and
  // could leak) without it.
  const key = secret?.trim();
  if (!key || key.length < 4) return text;
  return text.split(key).join('[redacted]');
}
