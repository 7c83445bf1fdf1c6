/** What a mock server can be told at start (the `mock-server` flags map onto these). */

export interface MockOptions {
  /** Default 0: a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** When set, requests must carry `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /**
   * Delay before a generated answer (HTTP 200, including blocked and cut ones), default 0.
   * Errors answer at once, as quota and validation errors do on the real endpoint.
   */
  latencyMs?: number;
  /** Adds a uniform random 0..latencyJitterMs to latencyMs. */
  latencyJitterMs?: number;
  /**
   * `small` (default): images about 256 px, a few KB, drawn from the prompt. `real`: real pixel
   * sizes, base64 padded to the endpoint's sizes (512 ~1 MB, 1K ~2 MB, 2K ~5 MB, 4K ~20 MB).
   */
  payload?: 'small' | 'real';
  /** Token-bucket quota in requests per second; over it the answer is 429. Unset: no quota. */
  rps?: number;
  /** Bucket size, default max(1, rps). */
  burst?: number;
  /** Probability 0..1 of a random 503. */
  failRate5xx?: number;
  /** Default true: Gemini 3 models send two interim thought images before the final one. */
  thoughtImages?: boolean;
  /** Append one JSON line per request (a MockRequestRecord) to this file. */
  requestLog?: string;
  /**
   * Model ids served beside the known ones, as a model newer than this version would be (PNG,
   * 1,120 image tokens a picture): for trying what happens with a model that has no price.
   */
  extraModels?: string[];
  /**
   * Model ids answered 404 (`model_not_found` on the images endpoint, NOT_FOUND on Gemini's), as
   * a retired model is: e.g. `dall-e-3`, which OpenAI retired upstream in 2026.
   */
  retiredModels?: string[];
  /**
   * Lifetime of every image link of the images endpoint, in ms. Default: the model's own
   * (Seedream 24 h, GPT Image and DALL-E 1 h); tests shorten it to see links expire.
   */
  linkTtlMs?: number;
}

/** Nonsense options fail at start, not as odd behaviour in the middle of a benchmark. */
export function checkOptions(options: MockOptions): void {
  const nonNegative = ['latencyMs', 'latencyJitterMs', 'rps', 'burst', 'linkTtlMs'] as const;
  for (const name of nonNegative) {
    const value = options[name];
    if (value !== undefined && !(Number.isFinite(value) && value >= 0)) {
      throw new RangeError(`mock option ${name} must be a number >= 0, got ${value}`);
    }
  }
  const rate = options.failRate5xx;
  if (rate !== undefined && !(rate >= 0 && rate <= 1)) {
    throw new RangeError(`mock option failRate5xx must be between 0 and 1, got ${rate}`);
  }
  if (options.burst !== undefined && options.burst < 1) throw new RangeError('mock option burst must be at least 1');
  if (options.payload !== undefined && options.payload !== 'small' && options.payload !== 'real') {
    throw new RangeError(`mock option payload must be 'small' or 'real', got ${String(options.payload)}`);
  }
}
