/**
 * Catalog definitions ↔ BullMQ job schedulers on the catalog queue, one scheduler per definition
 * (its id is the definition's name). The definitions folder is the truth: `sync` upserts every
 * valid definition and removes the schedulers whose definition file is gone.
 */
import { Queue, type RepeatOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadDefinitions, type CatalogDefinition, type DefinitionProblem } from './definition.js';
import { CATALOG_QUEUE, type QueueSettings } from '../queue/queue.js';

export const FIRING_JOB = 'catalog-firing';

/** What a firing job carries: the definition as it was when synced. */
export interface FiringJobData {
  definition: CatalogDefinition;
}

export function catalogQueue(settings: QueueSettings, connection: Redis): Queue<FiringJobData> {
  return new Queue<FiringJobData>(CATALOG_QUEUE, { connection, prefix: settings.prefix });
}

const firingJobOptions = { removeOnComplete: { count: 200 }, removeOnFail: { count: 200 }, attempts: 1 };

export interface SyncResult {
  upserted: string[];
  definitions: CatalogDefinition[];
  removed: string[];
  problems: DefinitionProblem[];
}

export async function syncSchedules(queue: Queue<FiringJobData>, dir: string): Promise<SyncResult> {
  const loaded = await loadDefinitions(dir);
  // A job with no schedule is for `run --job`: it has no scheduler to sync.
  const problems = [...loaded.problems, ...loaded.definitions.filter((d) => !isScheduled(d)).map((d) => ({ file: d.file, field: 'schedule', reason: 'a scheduled job needs a schedule: { pattern: "0 2 * * *" } or { every: 6h }' }))];
  const definitions = loaded.definitions.filter(isScheduled);
  for (const definition of definitions) {
    await queue.upsertJobScheduler(definition.name, await repeatOf(queue, definition), { name: FIRING_JOB, data: { definition }, opts: firingJobOptions });
  }
  // A definition file that exists but does not parse keeps its scheduler: a typo should not
  // silently stop a nightly job. Only a definition that is gone removes one.
  const keep = new Set([...definitions.map((definition) => definition.name), ...(await namesOfBrokenFiles(queue, problems))]);
  const removed: string[] = [];
  for (const scheduler of await queue.getJobSchedulers(0, -1)) {
    const id = scheduler.id ?? scheduler.key;
    if (!keep.has(id)) {
      await queue.removeJobScheduler(id);
      removed.push(id);
    }
  }
  return { upserted: definitions.map((definition) => definition.name), definitions, removed, problems };
}

/**
 * The scheduler's repeat options. An `every:` schedule first fires one interval after it is
 * synced, as a cron schedule first fires at its next match and as `schedule list` says (BullMQ
 * alone would fire it at once); syncing again with the same interval keeps the time it has.
 */
async function repeatOf(queue: Queue<FiringJobData>, definition: CatalogDefinition): Promise<RepeatOptions> {
  const { everyMs, pattern, tz } = definition.schedule;
  if (everyMs === undefined) return { pattern: pattern!, ...(tz ? { tz } : {}) };
  const existing = await queue.getJobScheduler(definition.name);
  return existing?.every === everyMs ? { every: everyMs } : { every: everyMs, startDate: Date.now() + everyMs };
}

function isScheduled(definition: CatalogDefinition): boolean {
  return definition.schedule.pattern !== undefined || definition.schedule.everyMs !== undefined;
}

/** Names of schedulers whose (now broken) definition file is still there. */
async function namesOfBrokenFiles(queue: Queue<FiringJobData>, problems: DefinitionProblem[]): Promise<string[]> {
  if (problems.length === 0) return [];
  const brokenFiles = new Set(problems.map((problem) => problem.file));
  const names: string[] = [];
  for (const scheduler of await queue.getJobSchedulers(0, -1)) {
    const file = scheduler.template?.data?.definition?.file;
    if (file && brokenFiles.has(file)) names.push(scheduler.id ?? scheduler.key);
  }
  return names;
}

export interface ScheduleListing {
  name: string;
  schedule: string;
  /** The schedule's time zone (UTC when it names none): `list` shows times in it. */
  tz: string;
  next?: string;
  mode?: string;
  batch?: string;
  csv?: string;
  budgetUsd?: number;
  /** The job's own output (`out:`); unset: each worker's. */
  out?: string;
}

export async function listSchedules(queue: Queue<FiringJobData>): Promise<ScheduleListing[]> {
  const schedulers = await queue.getJobSchedulers(0, -1, true);
  return schedulers
    .map((scheduler) => {
      const definition = scheduler.template?.data?.definition;
      const schedule = scheduler.pattern ? `cron "${scheduler.pattern}"${scheduler.tz ? ` ${scheduler.tz}` : ' UTC'}` : `every ${(scheduler.every ?? 0) / 1000} s`;
      return {
        name: scheduler.id ?? scheduler.key,
        schedule,
        tz: scheduler.tz ?? definition?.schedule.tz ?? 'UTC',
        ...(scheduler.next ? { next: new Date(scheduler.next).toISOString() } : {}),
        ...(definition ? { mode: definition.mode, batch: definition.batch, csv: definition.csv } : {}),
        ...(definition?.budgetUsd !== undefined ? { budgetUsd: definition.budgetUsd } : {}),
        ...(definition?.out !== undefined ? { out: definition.out } : {}),
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

export async function removeSchedule(queue: Queue<FiringJobData>, name: string): Promise<boolean> {
  return queue.removeJobScheduler(name);
}

/** Fires a catalog job now, outside its schedule (the schedule is unchanged). */
export async function fireNow(queue: Queue<FiringJobData>, name: string): Promise<boolean> {
  const scheduler = await queue.getJobScheduler(name);
  const definition = scheduler?.template?.data?.definition;
  if (!definition) return false;
  await queue.add(FIRING_JOB, { definition }, { ...firingJobOptions, jobId: `manual-${name}-${Date.now()}` });
  return true;
}
