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
import { catalogQueue, fireNow, listSchedules, removeSchedule, syncSchedules } from '../../catalog/schedule.js';

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
        for (const name of result.upserted) process.stdout.write(`synced ${name}\n`);
        for (const name of result.removed) process.stdout.write(`removed ${name} (its definition is gone)\n`);
        for (const problem of result.problems) process.stderr.write(`rejected ${formatDefinitionProblem(problem)} (a scheduler it had is kept as it was)\n`);
        for (const definition of result.definitions) {
          if (!existsSync(definition.csv)) process.stderr.write(`warning: ${definition.name}: its CSV ${definition.csv} does not exist; each firing fails until it does\n`);
        }
        process.stdout.write(`${result.upserted.length} synced, ${result.removed.length} removed, ${result.problems.length} rejected\n`);
        return result.problems.length > 0 ? 1 : 0;
      }
      case 'list': {
        const schedules = await listSchedules(queue);
        const catalogs = new CatalogState(connection, settings.prefix);
        if (flags.format === 'json') {
          const withRuns = await Promise.all(schedules.map(async (schedule) => ({ ...schedule, lastRun: (await catalogs.runs(schedule.name, 1))[0] ?? null })));
          process.stdout.write(`${JSON.stringify(withRuns, null, 2)}\n`);
          return 0;
        }
        if (schedules.length === 0) process.stdout.write('no catalog jobs scheduled (tokenhot-batch schedule sync jobs/)\n');
        for (const schedule of schedules) {
          const last = (await catalogs.runs(schedule.name, 1))[0];
          process.stdout.write(
            `${schedule.name}: ${schedule.schedule}, next ${schedule.next ?? '?'}, ${schedule.mode ?? '?'}, batch ${schedule.batch ?? '?'}` +
              `${schedule.budgetUsd !== undefined ? `, budget $${schedule.budgetUsd}` : ''}\n  csv ${schedule.csv ?? '?'}\n` +
              (last ? `  last run ${last.firedAt}: ${last.status}${last.reason ? ` (${last.reason})` : ''}, ${last.enqueued} enqueued, ${last.unchanged} unchanged, ${last.rejected} rejected → ${last.batch}\n` : '  not run yet\n'),
          );
        }
        return 0;
      }
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
