/**
 * The bucket outputs whose spool on this machine holds ledger segments that processes now gone
 * left behind. A worker opens each as it starts, which ships them (open-output.ts): a job's own
 * bucket (`out:`) gets a killed worker's last lines then, not only at the job's next row.
 */
import { readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { LEDGER_DIR } from './ledger-files.js';
import { isLeftover } from './ledger-shipping.js';
import { checkOutputLocation, spoolRoot } from './location.js';

/** Bucket and prefix parts, as deep as a spool goes (prefix parts are folders). */
const MAX_DEPTH = 12;

/** `s3://bucket/prefix` of each spool under the spool root with a leftover segment. */
export async function bucketsWithLeftovers(env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const root = spoolRoot(env);
  const found: string[] = [];
  const visit = async (dir: string, depth: number): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const path = join(dir, entry.name);
      // `<root>/<bucket>/<prefix...>/ledger`; a prefix part named "ledger" holds folders, not segments.
      if (entry.name === LEDGER_DIR && depth > 0 && (await hasLeftover(path))) {
        const url = `s3://${relative(root, dir).split(sep).join('/')}`;
        if (checkOutputLocation(url) === undefined) found.push(url);
      }
      if (depth < MAX_DEPTH) await visit(path, depth + 1);
    }
  };
  await visit(root, 0);
  return found;
}

async function hasLeftover(ledgerDir: string): Promise<boolean> {
  const names = await readdir(ledgerDir).catch(() => [] as string[]);
  return names.some((name) => isLeftover(name));
}
