/**
 * `tokenhot-batch schedule sync <dir> | list | remove NAME | run NAME`: catalog jobs on BullMQ
 * job schedulers. Firings are run by the catalog worker that `work` starts.
 */
import { existsSync } from 'node:fs';
import { formatDefinitionProblem } from '../../catalog/definition.js';
import { CatalogState } from '../../catalog/state.js';
import { loadConfig, type ConfigFlags } from '../../core/config.js';
import { UsageError } from '../../core/errors.js';
import { connectRedis, queueSettings } from '../../queue/queue.js';
import type { Queue } from 'bullmq';
import { catalogQueue, fireNow, listSchedules, removeSchedule, syncSchedules, type FiringJobData } from '../../catalog/schedule.js';
import { timeInZone } from '../../catalog/zoned-time.js';
import { BatchState } from '../../queue/batch-state.js';

export interface ScheduleFlags extends ConfigFlags {
  prefix?: string;
  format?: string;
}

export async function scheduleCommand(action: 'sync' | 'list' | 'remove' | 'run', argument: string | undefined, flags: ScheduleFlags): Promise<number> {
  const config = loadConfig(flags);
  const settings = queueSettings(config.redisUrl, flags.prefix);
  const connection = await connectRedis(settings.redisUrl, 'producer');
  const queue = catalogQueue(settings, connection);
  try {
    switch (action) {
      case 'sync': {
        const result = await syncSchedules(queue, argument!);
        // Syncing accepts each feed's header as it is now (a firing stops when columns went missing).
        const catalogs = new CatalogState(connection, settings.prefix);
        for (const definition of result.definitions) await catalogs.forgetFeedColumns(definition.name);
        for (const name of result.upserted) process.stdout.write(`synced ${name}\n`);
        for (const name of result.removed) process.stdout.write(`removed ${name} (no definition of it in ${argument}: the folder synced is the whole set of jobs)\n`);
        for (const problem of result.problems) process.stderr.write(`rejected ${formatDefinitionProblem(problem)} (a scheduler it had is kept as it was)\n`);
        for (const definition of result.definitions) {
          if (!existsSync(definition.csv)) process.stderr.write(`warning: ${definition.name}: its CSV ${definition.csv} does not exist; each firing fails until it does\n`);
        }
        process.stdout.write(`${result.upserted.length} synced, ${result.removed.length} removed, ${result.problems.length} rejected\n`);
        return result.problems.length > 0 ? 1 : 0;
      }
      case 'list':
        await listCommand(queue, new CatalogState(connection, settings.prefix), new BatchState(connection, settings.prefix), flags.format === 'json');
        return 0;
      case 'remove': {
        const removed = await removeSchedule(queue, argument!);
        if (!removed) throw new UsageError(`no catalog job "${argument}" is scheduled`);
        process.stdout.write(`removed ${argument}\n`);
        return 0;
      }
      case 'run': {
        if (!(await fireNow(queue, argument!))) throw new UsageError(`no catalog job "${argument}" is scheduled (schedule sync first)`);
        process.stdout.write(`${argument} fired; a worker runs it (tokenhot-batch status shows the run)\n`);
        return 0;
      }
    }
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/** The schedules with their next firing and last run in each schedule's time zone, and the rows parked over budget. */
async function listCommand(queue: Queue<FiringJobData>, catalogs: CatalogState, batches: BatchState, json: boolean): Promise<void> {
  const schedules = await Promise.all(
    (await listSchedules(queue)).map(async (schedule) => ({
      ...schedule,
      parkedRows: (await batches.parkedIn(await catalogs.batches(schedule.name))).reduce((sum, count) => sum + count, 0),
      lastRun: (await catalogs.runs(schedule.name, 1))[0] ?? null,
    })),
  );
  if (json) {
    process.stdout.write(`${JSON.stringify(schedules, null, 2)}\n`);
    return;
  }
  if (schedules.length === 0) process.stdout.write('no catalog jobs scheduled (tokenhot-batch schedule sync jobs/)\n');
  for (const schedule of schedules) {
    const last = schedule.lastRun;
    process.stdout.write(
      `${schedule.name}: ${schedule.schedule}, next ${schedule.next ? timeInZone(schedule.next, schedule.tz) : '?'}, ${schedule.mode ?? '?'}, batch ${schedule.batch ?? '?'}` +
        `${schedule.budgetUsd !== undefined ? `, budget $${schedule.budgetUsd}` : ''}\n  csv ${schedule.csv ?? '?'}\n` +
        (schedule.out !== undefined ? `  out ${schedule.out}\n` : '') +
        (last
          ? `  last run ${timeInZone(last.firedAt, schedule.tz)}: ${last.status}${last.reason ? ` (${last.reason})` : ''}, ${last.enqueued} enqueued` +
            `${last.takenOver ? ` (${last.takenOver} taken over from earlier firings)` : ''}, ${last.unchanged} unchanged, ${last.stillQueued} still queued, ${last.rejected} rejected → ${last.batch}\n`
          : '  not run yet\n') +
        (schedule.parkedRows > 0 ? `  ${schedule.parkedRows} row(s) parked over budget; the next firing takes them over under its budget\n` : ''),
    );
  }
}
