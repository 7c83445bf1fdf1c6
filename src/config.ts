/**
 * Environment and command-line flags → one validated configuration. Flags win over the
 * environment; everything has a default except the API key, which only calls need.
 */
import { z } from 'zod';
import { UsageError } from './errors.js';
import type { ResponseModalities } from './gemini/request.js';
import { DEFAULT_MODEL } from './models.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry-policy.js';

export const DEFAULT_BASE_URL = 'https://tokenhot.ai';

export interface Config {
  /** TOKENHOT_API_KEY. Only in memory: never in job data, logs, ledger or reports. */
  apiKey?: string;
  /** TOKENHOT_BASE_URL. @default https://tokenhot.ai */
  baseUrl: string;
  /** TOKENHOT_OUT_DIR or --out. @default ./output */
  outDir: string;
  /** REDIS_URL; unset means `run` works in-process. */
  redisUrl?: string;
  /** Row defaults for the CSV's empty cells. */
  model: string;
  aspectRatio?: string;
  imageSize?: string;
  /** Calls in flight per process. @default 8 */
  concurrency: number;
  /** Longest wait for one answer. @default 600000 (4K answers take well over a minute) */
  timeoutMs: number;
  /** `["TEXT","IMAGE"]` (default) or `["IMAGE"]` with --image-only. */
  responseModalities: ResponseModalities;
  retry: RetryPolicy;
  /** A JSON or YAML price file laid over the built-in prices. */
  priceFile?: string;
  /** fsync images, sidecars and ledger lines before counting them written. @default true */
  durable: boolean;
}

/** The flags any command may pass; unset ones fall back to the environment, then defaults. */
export interface ConfigFlags {
  out?: string;
  model?: string;
  aspectRatio?: string;
  imageSize?: string;
  concurrency?: string | number;
  timeout?: string | number;
  attempts?: string | number;
  baseUrl?: string;
  prices?: string;
  imageOnly?: boolean;
  durable?: boolean;
}

const positiveInt = (name: string, max: number) =>
  z.coerce
    .number({ error: `${name} must be a number` })
    .int(`${name} must be a whole number`)
    .min(1, `${name} must be at least 1`)
    .max(max, `${name} must be at most ${max}`);

const schema = z.object({
  apiKey: z.string().min(1).optional(),
  baseUrl: z.url({ protocol: /^https?$/, error: 'the base URL must be an http(s) URL' }),
  outDir: z.string().min(1),
  redisUrl: z
    .string()
    .regex(/^rediss?:\/\//, 'REDIS_URL must start with redis:// or rediss://')
    .optional(),
  model: z.string().regex(/^[a-z0-9][a-z0-9.-]*$/i, 'the model id may hold letters, digits, "." and "-"'),
  aspectRatio: z.string().optional(),
  imageSize: z.string().optional(),
  concurrency: positiveInt('--concurrency', 1000),
  timeoutSeconds: positiveInt('--timeout', 3600),
  attempts: positiveInt('--attempts', 100),
  priceFile: z.string().optional(),
  imageOnly: z.boolean(),
  durable: z.boolean(),
});

const nonEmpty = (value: string | undefined): string | undefined => (value === undefined || value.trim() === '' ? undefined : value.trim());

export function loadConfig(flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse({
    apiKey: nonEmpty(env.TOKENHOT_API_KEY),
    baseUrl: nonEmpty(flags.baseUrl) ?? nonEmpty(env.TOKENHOT_BASE_URL) ?? DEFAULT_BASE_URL,
    outDir: nonEmpty(flags.out) ?? nonEmpty(env.TOKENHOT_OUT_DIR) ?? './output',
    redisUrl: nonEmpty(env.REDIS_URL),
    model: nonEmpty(flags.model) ?? nonEmpty(env.TOKENHOT_MODEL) ?? DEFAULT_MODEL,
    aspectRatio: nonEmpty(flags.aspectRatio),
    imageSize: nonEmpty(flags.imageSize),
    concurrency: flags.concurrency ?? 8,
    timeoutSeconds: flags.timeout ?? 600,
    attempts: flags.attempts ?? DEFAULT_RETRY_POLICY.attempts,
    priceFile: nonEmpty(flags.prices) ?? nonEmpty(env.TOKENHOT_PRICES),
    imageOnly: flags.imageOnly ?? false,
    durable: flags.durable ?? env.TOKENHOT_DURABLE !== '0',
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    // Never echo the key back, whatever went wrong.
    throw new UsageError(`bad configuration: ${issue.message}`);
  }
  const value = parsed.data;
  return {
    apiKey: value.apiKey,
    baseUrl: value.baseUrl,
    outDir: value.outDir,
    redisUrl: value.redisUrl,
    model: value.model,
    aspectRatio: value.aspectRatio,
    imageSize: value.imageSize,
    concurrency: value.concurrency,
    timeoutMs: value.timeoutSeconds * 1000,
    responseModalities: value.imageOnly ? ['IMAGE'] : ['TEXT', 'IMAGE'],
    retry: { ...DEFAULT_RETRY_POLICY, attempts: value.attempts },
    priceFile: value.priceFile,
    durable: value.durable,
  };
}

/** The API key, or a usage error that says where it comes from. */
export function requireApiKey(config: Config): string {
  if (!config.apiKey) throw new UsageError('TOKENHOT_API_KEY is not set: export your Tokenhot API key first');
  return config.apiKey;
}
