/**
 * Environment and command-line flags → one validated configuration. Flags win over the
 * environment; everything has a default except the API key, which only calls need.
 */
import { z } from 'zod';
import { UsageError } from './errors.js';
import type { ResponseModalities } from '../providers/gemini/request.js';
import { ALL_ASPECT_RATIOS, ALL_IMAGE_SIZES, DEFAULT_MODEL, findModel, normalizeImageSize } from '../providers/models.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../run/retry-policy.js';
import { checkOutputLocation, normalizeOutput } from '../output/location.js';

export const DEFAULT_BASE_URL = 'https://tokenhot.ai';

export interface Config {
  /** TOKENHOT_API_KEY. Only in memory: never in job data, logs, ledger or reports. */
  apiKey?: string;
  /** TOKENHOT_BASE_URL. @default https://tokenhot.ai */
  baseUrl: string;
  /**
   * TOKENHOT_OUT_DIR or --out: a folder, or a bucket as `s3://bucket/prefix` (output/location.ts;
   * the URL without a trailing `/`). @default ./output
   */
  outDir: string;
  /** REDIS_URL; unset means `run` works in-process. */
  redisUrl?: string;
  /** Row defaults for the CSV's empty cells. */
  model: string;
  /** Where `model` came from, to name it in messages. */
  /** `--model`, `TOKENHOT_MODEL`, `default`, or a job definition's `defaults.model` (named by its file). */
  modelSource: string;
  aspectRatio?: string;
  /** In the form the API requires (`2K`), whatever case it was given in. */
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
  /**
   * TOKENHOT_WEBHOOK_SECRET: signs the webhooks of `--notify` and `notify:` (notify/sign.ts).
   * Only in memory, as the API key: never in job data, logs or bodies.
   */
  webhookSecret?: string;
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
  outDir: z
    .string()
    .min(1)
    .refine((out) => checkOutputLocation(out) === undefined, { error: (issue) => checkOutputLocation(String(issue.input)) ?? 'bad output location' })
    .transform(normalizeOutput),
  redisUrl: z
    .string()
    .regex(/^rediss?:\/\//, 'REDIS_URL must start with redis:// or rediss://')
    .optional(),
  model: z.string(),
  aspectRatio: z.string().optional(),
  imageSize: z.string().optional(),
  concurrency: positiveInt('--concurrency', 1000),
  timeoutSeconds: positiveInt('--timeout', 3600),
  attempts: positiveInt('--attempts', 100),
  priceFile: z.string().optional(),
  imageOnly: z.boolean(),
  durable: z.boolean(),
  webhookSecret: z.string().min(16, 'TOKENHOT_WEBHOOK_SECRET must be at least 16 characters (e.g. openssl rand -hex 32)').optional(),
});

const nonEmpty = (value: string | undefined): string | undefined => (value === undefined || value.trim() === '' ? undefined : value.trim());

/**
 * The row defaults given as flags, checked once here: a bad value is one error naming the flag
 * (exit 2), not a problem repeated on every row that would take it. Whether a value suits a
 * row's model is for the row checks, since rows may name other models.
 */
function checkRowDefaultFlags(flags: ConfigFlags, model: { id: string; source: string }): void {
  if (!/^[a-z0-9][a-z0-9.-]*$/i.test(model.id)) throw new UsageError(`${model.source}: "${model.id}" is not a model id (letters, digits, "." and "-", like ${DEFAULT_MODEL})`);
  const ratio = nonEmpty(flags.aspectRatio);
  if (ratio !== undefined && !ALL_ASPECT_RATIOS.includes(ratio)) throw new UsageError(`--aspect-ratio: "${ratio}" is not an aspect ratio (${ALL_ASPECT_RATIOS.join(', ')})`);
  const size = nonEmpty(flags.imageSize);
  if (size !== undefined && !ALL_IMAGE_SIZES.includes(normalizeImageSize(size))) {
    throw new UsageError(`--image-size: "${size}" is not an image size (${ALL_IMAGE_SIZES.join(', ')}; 512 on 3.1 flash only)`);
  }
  // Rows that name no model take this one with the flags' values: a value it cannot take would
  // refuse every such row, one line each. Said once here instead.
  const known = findModel(model.id);
  const whose = `${model.id}${model.source === 'default' ? ', the model of rows that name none (give --model for another)' : ''}`;
  if (known && ratio !== undefined && !known.aspectRatios.includes(ratio)) {
    throw new UsageError(`--aspect-ratio: "${ratio}" is not an aspect ratio of ${whose}: ${known.aspectRatios.join(', ')}`);
  }
  if (known && size !== undefined && !known.imageSizes.includes(normalizeImageSize(size))) {
    throw new UsageError(`--image-size: "${size}" is not an image size of ${whose}: ${known.imageSizes.length > 0 ? known.imageSizes.join(', ') : 'it takes none'}`);
  }
}

export function loadConfig(flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const modelSource = nonEmpty(flags.model) !== undefined ? '--model' : nonEmpty(env.TOKENHOT_MODEL) !== undefined ? 'TOKENHOT_MODEL' : 'default';
  const model = nonEmpty(flags.model) ?? nonEmpty(env.TOKENHOT_MODEL) ?? DEFAULT_MODEL;
  checkRowDefaultFlags(flags, { id: model, source: modelSource });
  const parsed = schema.safeParse({
    apiKey: nonEmpty(env.TOKENHOT_API_KEY),
    baseUrl: nonEmpty(flags.baseUrl) ?? nonEmpty(env.TOKENHOT_BASE_URL) ?? DEFAULT_BASE_URL,
    outDir: nonEmpty(flags.out) ?? nonEmpty(env.TOKENHOT_OUT_DIR) ?? './output',
    redisUrl: nonEmpty(env.REDIS_URL),
    model,
    aspectRatio: nonEmpty(flags.aspectRatio),
    imageSize: flags.imageSize === undefined ? undefined : nonEmpty(normalizeImageSize(flags.imageSize)),
    concurrency: flags.concurrency ?? 8,
    timeoutSeconds: flags.timeout ?? 600,
    attempts: flags.attempts ?? DEFAULT_RETRY_POLICY.attempts,
    priceFile: nonEmpty(flags.prices) ?? nonEmpty(env.TOKENHOT_PRICES),
    imageOnly: flags.imageOnly ?? false,
    durable: flags.durable ?? env.TOKENHOT_DURABLE !== '0',
    webhookSecret: nonEmpty(env.TOKENHOT_WEBHOOK_SECRET),
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
    modelSource,
    aspectRatio: value.aspectRatio,
    imageSize: value.imageSize,
    concurrency: value.concurrency,
    timeoutMs: value.timeoutSeconds * 1000,
    responseModalities: value.imageOnly ? ['IMAGE'] : ['TEXT', 'IMAGE'],
    retry: { ...DEFAULT_RETRY_POLICY, attempts: value.attempts },
    priceFile: value.priceFile,
    durable: value.durable,
    ...(value.webhookSecret ? { webhookSecret: value.webhookSecret } : {}),
  };
}

/** The webhook secret when there are URLs to notify: webhooks are never sent unsigned. */
export function requireWebhookSecret(config: Config, urls: readonly string[]): string | undefined {
  if (urls.length === 0) return config.webhookSecret;
  if (!config.webhookSecret) throw new UsageError('TOKENHOT_WEBHOOK_SECRET is not set: webhooks (--notify, a job\'s notify:) are signed with it; export a secret of at least 16 characters (e.g. openssl rand -hex 32) and give it to the receivers');
  return config.webhookSecret;
}

/** The API key, or a usage error that says where it comes from. */
export function requireApiKey(config: Config): string {
  if (!config.apiKey) throw new UsageError('TOKENHOT_API_KEY is not set: export your Tokenhot API key first');
  return config.apiKey;
}
