/**
 * `tokenhot-batch deliver --batch NAME [--job NAME] [--approved]`: writes the batch's manifest
 * (and the job's `latest/` view) again from what is on disk, after a review: with `--approved`
 * only the images approved by then go out. Runs and workers write both when a batch ends; this is
 * for the decisions made after that.
 */
import { loadConfig, type ConfigFlags } from '../../core/config.js';
import { UsageError } from '../../core/errors.js';
import { updateLatest } from '../../output/latest.js';
import { MANIFEST_CSV, writeManifest } from '../../output/manifest.js';
import { reviewableOutput } from '../../output/reviews.js';
import { OutputStore } from '../../output/storage.js';
import { existsSync } from 'node:fs';

export interface DeliverFlags extends ConfigFlags {
  batch?: string;
  job?: string;
  approved?: boolean;
}

export async function deliverCommand(flags: DeliverFlags): Promise<number> {
  if (!flags.batch) throw new UsageError('--batch NAME: the batch to deliver');
  const config = loadConfig(flags);
  if (flags.approved) reviewableOutput(config.outDir);
  const store = new OutputStore(config.outDir, { durable: config.durable });
  if (!(await store.readBatchText(flags.batch, MANIFEST_CSV)) && !existsSync(store.batchDir(flags.batch))) throw new UsageError(`no batch ${flags.batch} under ${config.outDir}`);
  const deliver = { deliver: flags.approved ? 'approved' : 'all' } as const;
  const manifest = await writeManifest(store, flags.batch, deliver);
  for (const warning of manifest.warnings) process.stderr.write(`warning: ${warning}\n`);
  process.stdout.write(`${manifest.csvPath}: ${manifest.rows} row(s)${flags.approved ? ' approved' : ''}, ${manifest.done} done, ${manifest.failed} failed\n`);
  if (flags.job) {
    const latest = await updateLatest(store, flags.job, flags.batch, { ...deliver, entries: manifest.entries });
    process.stdout.write(`${latest.dir}: ${latest.entries} image(s), ${latest.updated} updated\n`);
  }
  return 0;
}
