/**
 * Catalog job definitions: one file per job in `jobs/` (JSON or YAML), validated with errors that
 * name the file and the field. The folder is the truth: `schedule sync` makes the job schedulers
 * match it.
 */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { CronExpressionParser } from 'cron-parser';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { capabilitiesOf, normalizeImageSize } from '../providers/models.js';
import { UsageError } from '../core/errors.js';
import { zonedParts } from './zoned-time.js';
import { checkOutputLocation, isBucketUrl, normalizeOutput } from '../output/location.js';
import { feedJobFields, feedJobOf, shotOptionProblem, type FeedJob } from './shots.js';
import { DELIVER_CHOICES, type Deliver } from '../core/types.js';

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30s`, `5m`, `1h`, `1d` or a number of milliseconds. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? value : undefined;
  const match = value.trim().match(DURATION);
  return match ? Math.round(Number(match[1]) * UNIT_MS[match[2]!]!) : undefined;
}

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const scheduleSchema = z
  .object({
    pattern: z.string().optional(),
    tz: z.string().optional(),
    every: z.union([z.string(), z.number()]).optional(),
  })
  .strict()
  .superRefine((schedule, context) => {
    if ((schedule.pattern === undefined) === (schedule.every === undefined)) {
      context.addIssue({ code: 'custom', message: 'give either a cron "pattern" or "every", not both' });
      return;
    }
    if (schedule.tz !== undefined && !validTimeZone(schedule.tz)) {
      context.addIssue({ code: 'custom', path: ['tz'], message: `"${schedule.tz}" is not a time zone (e.g. Europe/Berlin)` });
    }
    if (schedule.pattern !== undefined) {
      try {
        CronExpressionParser.parse(schedule.pattern, schedule.tz ? { tz: schedule.tz } : {});
      } catch (error) {
        context.addIssue({ code: 'custom', path: ['pattern'], message: `"${schedule.pattern}" is not a cron pattern (${(error as Error).message})` });
      }
    }
    if (schedule.every !== undefined && parseDuration(schedule.every) === undefined) {
      context.addIssue({ code: 'custom', path: ['every'], message: `"${schedule.every}" is not a duration (e.g. 30s, 15m, 1h, or milliseconds)` });
    }
  });

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const definitionSchema = z
  .object({
    name: z.string().regex(NAME, 'letters, digits, ".", "_" and "-", at most 64'),
    csv: z.string().min(1).optional(),
    // A product feed made into rows by a shot list (catalog/shots.ts), instead of a prompt CSV.
    ...feedJobFields,
    feed: feedJobFields.feed.optional(),
    format: feedJobFields.format.optional(),
    // Optional for `run --job` / `estimate --job`; `schedule sync` needs it.
    schedule: scheduleSchema.optional(),
    defaults: z
      .object({
        model: z.string().optional(),
        aspectRatio: z.string().optional(),
        // `2k` as Tokenhot's docs write it; kept as the API requires it (`2K`).
        imageSize: z.string().transform(normalizeImageSize).optional(),
      })
      .strict()
      .optional(),
    batch: z.string().min(1).optional(),
    budgetUsd: z.number().positive().optional(),
    mode: z.enum(['incremental', 'full']).default('incremental'),
    // What the manifest and latest/ hand out: every finished image, or only those approved in review.
    deliver: z.enum(DELIVER_CHOICES).optional(),
    // Rows whose newest image was rejected in review are made again by the next firing (guided: with the note).
    regenerate: z.enum(['rejected', 'guided']).optional(),
    description: z.string().optional(),
    // Where the job's batches go, whatever the worker's TOKENHOT_OUT_DIR: a folder or s3://bucket/prefix.
    out: z
      .string()
      .trim()
      .min(1, 'give a folder or s3://bucket/prefix, or remove the field')
      .refine((out) => checkOutputLocation(out) === undefined, { error: (issue) => checkOutputLocation(String(issue.input)) ?? 'bad output location' })
      // No shell reads this file: "~/images" would be a folder named "~" beside it.
      .refine((out) => !out.startsWith('~'), { error: (issue) => `"${String(issue.input)}": a leading ~ is not expanded here; give the folder relative to this file, or its absolute path` })
      .optional(),
    // Webhook receivers of the job's batches and firings (signed with TOKENHOT_WEBHOOK_SECRET).
    notify: z.array(z.url({ protocol: /^https?$/, error: 'each notify entry must be an http(s) URL' })).min(1, 'give at least one URL, or leave notify out').optional(),
  })
  .strict()
  .superRefine((definition, context) => {
    if ((definition.csv === undefined) === (definition.feed === undefined)) {
      context.addIssue({ code: 'custom', path: [definition.csv === undefined ? 'csv' : 'feed'], message: 'give either csv (a prompt CSV) or feed (a product feed with format and shots), not both' });
    }
    if (definition.feed !== undefined && definition.format === undefined) context.addIssue({ code: 'custom', path: ['format'], message: 'a feed needs its format: shopify, merchant or plain' });
    // Reviews are kept in folders: on a bucket no row would ever count as approved, and every
    // manifest and latest/ view of the job would be empty.
    const reviewed = [definition.deliver === 'approved' ? 'deliver: approved' : undefined, definition.regenerate ? `regenerate: ${definition.regenerate}` : undefined].filter(Boolean);
    if (definition.out !== undefined && isBucketUrl(definition.out) && reviewed.length > 0) {
      context.addIssue({ code: 'custom', path: ['out'], message: `${reviewed.join(' and ')} needs a folder output (reviews are kept in folders); an output on a bucket cannot be reviewed yet` });
    }
    const model = definition.defaults?.model;
    if (model) {
      const capabilities = capabilitiesOf(model);
      const ratio = definition.defaults?.aspectRatio;
      if (ratio && !capabilities.aspectRatios.includes(ratio)) {
        context.addIssue({ code: 'custom', path: ['defaults', 'aspectRatio'], message: `"${ratio}" is not an aspect ratio of ${model}` });
      }
      const size = definition.defaults?.imageSize;
      if (size && !capabilities.imageSizes.includes(size)) {
        context.addIssue({ code: 'custom', path: ['defaults', 'imageSize'], message: `"${size}" is not an image size of ${model}` });
      }
    }
    const batch = definition.batch ?? '{name}/{date}';
    const unknown = [...batch.matchAll(/\{([^}]*)\}/g)].map((match) => match[1]).filter((word) => !['name', 'date', 'time'].includes(word ?? ''));
    if (unknown.length > 0) context.addIssue({ code: 'custom', path: ['batch'], message: `unknown placeholder {${unknown[0]}} (use {name}, {date}, {time})` });
  });

export type CatalogMode = 'incremental' | 'full';

/** A definition, checked, with paths made absolute; this travels as the scheduler's job data. */
export interface CatalogDefinition {
  name: string;
  /** The definition file it came from. */
  file: string;
  /** Absolute path of the prompt CSV or of the feed (given relative to the definition file). */
  csv: string;
  /** A feed job: its mapping and shot list; `csv` is then the feed's path. */
  feed?: FeedJob;
  schedule: { pattern?: string; tz?: string; everyMs?: number };
  defaults: { model?: string; aspectRatio?: string; imageSize?: string };
  /** Batch name pattern: `{name}`, `{date}` (YYYY-MM-DD), `{time}` (HHmmss), in the schedule's time zone. */
  batch: string;
  budgetUsd?: number;
  mode: CatalogMode;
  /** `approved`: manifests and latest/ hold only images approved in review. @default 'all' */
  deliver?: Deliver;
  /** `rejected`: the next firing makes rows rejected in review again; `guided` adds the note to the prompt. */
  regenerate?: 'rejected' | 'guided';
  /** Webhook URLs told of its batches and firings (notify/). */
  notify?: string[];
  /**
   * Where its batches go (images, sidecars, ledger, manifests, latest/): an absolute folder, or
   * `s3://bucket/prefix`. Unset: where the process's `--out` / `TOKENHOT_OUT_DIR` says.
   */
  out?: string;
}

export interface DefinitionProblem {
  file: string;
  field: string;
  reason: string;
}

export function formatDefinitionProblem(problem: DefinitionProblem): string {
  return `${problem.file}: ${problem.field ? `${problem.field}: ` : ''}${problem.reason}`;
}

const DEFINITION_FILE = /\.(json|ya?ml)$/i;

/** Reads one definition file; a problem names the file and the field. */
export async function loadDefinition(file: string): Promise<CatalogDefinition | DefinitionProblem> {
  let raw: unknown;
  try {
    const text = await readFile(file, 'utf8');
    raw = extname(file).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    return { file, field: '', reason: `cannot be read as ${extname(file).slice(1).toUpperCase()}: ${(error as Error).message}` };
  }
  const parsed = definitionSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { file, field: issue.path.join('.'), reason: issue.message };
  }
  const value = parsed.data;
  const feed = value.feed !== undefined ? feedJobOf(file, { ...value, feed: value.feed, format: value.format! }) : undefined;
  // A shot its model cannot make is this file's mistake: said now (sync, run), not at a firing.
  const shotProblem = feed ? shotOptionProblem(feed, value.defaults?.model) : undefined;
  if (shotProblem) return { file, field: '', reason: shotProblem.replace(`${file}: `, '') };
  return {
    name: value.name,
    file,
    csv: feed ? feed.feed : resolve(dirname(file), value.csv!),
    ...(feed ? { feed } : {}),
    schedule: {
      ...(value.schedule?.pattern ? { pattern: value.schedule.pattern } : {}),
      ...(value.schedule?.tz ? { tz: value.schedule.tz } : {}),
      ...(value.schedule?.every !== undefined ? { everyMs: parseDuration(value.schedule.every)! } : {}),
    },
    defaults: value.defaults ?? {},
    batch: value.batch ?? '{name}/{date}',
    ...(value.budgetUsd !== undefined ? { budgetUsd: value.budgetUsd } : {}),
    mode: value.mode,
    ...(value.notify ? { notify: [...new Set(value.notify)] } : {}),
    ...(value.deliver ? { deliver: value.deliver } : {}),
    ...(value.regenerate ? { regenerate: value.regenerate } : {}),
    // A folder is relative to this file, as csv is: every worker then writes to the same path.
    ...(value.out !== undefined ? { out: isBucketUrl(value.out) ? normalizeOutput(value.out) : resolve(dirname(file), value.out) } : {}),
  };
}

/** Every definition in a folder (not recursive: example CSVs live in subfolders). */
export async function loadDefinitions(dir: string): Promise<{ definitions: CatalogDefinition[]; problems: DefinitionProblem[] }> {
  // A folder that is not there is a mistake, never "no definitions": sync would remove every scheduler.
  const all = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    const why = error.code === 'ENOENT' ? 'no such folder' : error.code === 'ENOTDIR' ? 'not a folder' : error.message;
    throw new UsageError(`${dir}: ${why}; give the folder of catalog definitions (like jobs/)`);
  });
  const names = all.filter((name) => DEFINITION_FILE.test(name)).sort();
  const definitions: CatalogDefinition[] = [];
  const problems: DefinitionProblem[] = [];
  const seen = new Map<string, string>();
  for (const name of names) {
    const result = await loadDefinition(join(resolve(dir), name));
    if ('reason' in result) {
      problems.push(result);
      continue;
    }
    const earlier = seen.get(result.name);
    if (earlier) {
      problems.push({ file: result.file, field: 'name', reason: `"${result.name}" is already the name of ${earlier}` });
      continue;
    }
    seen.set(result.name, result.file);
    definitions.push(result);
  }
  return { definitions, problems };
}

/** The batch of one firing: the pattern with the firing's date and time in the schedule's zone. */
export function batchNameOf(definition: Pick<CatalogDefinition, 'name' | 'batch' | 'schedule'>, firedAt: Date): string {
  const { date, hour, minute, second } = zonedParts(firedAt, definition.schedule.tz ?? 'UTC');
  return definition.batch
    .replaceAll('{name}', definition.name)
    .replaceAll('{date}', date)
    .replaceAll('{time}', `${hour}${minute}${second}`);
}
