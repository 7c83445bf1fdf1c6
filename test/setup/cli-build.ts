/**
 * The CLI that the tests spawn, compiled once per test run: esbuild strips the types of src/ into
 * a folder of this run's own under `.test-build/` in about a second. Spawning through
 * `node --import tsx` instead transforms the sources again in every process: about a second of
 * CPU each, over the hundreds of processes the tests start. Tests get the entry point with
 * `inject('cliEntry')` (see helpers/processes.ts).
 */
import { readdir, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { build } from 'esbuild';
import type { TestProject } from 'vitest/node';
import { ROOT } from '../helpers/root.js';

declare module 'vitest' {
  export interface ProvidedContext {
    cliEntry: string;
  }
}

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return sources(path);
      return Promise.resolve(entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : []);
    }),
  );
  return nested.flat();
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // One folder per run: two runs at once (a developer's and an editor's) never share one. It
  // sits inside the project so that the compiled files find node_modules and package.json.
  const outdir = join(ROOT, '.test-build', `run-${process.pid}`);
  await rm(outdir, { recursive: true, force: true });
  const src = join(ROOT, 'src');
  await build({
    entryPoints: await sources(src),
    outdir: join(outdir, 'src'),
    outbase: src,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'warning',
  });
  project.provide('cliEntry', relative(ROOT, join(outdir, 'src', 'cli', 'bin.js')));
  return async () => {
    await rm(outdir, { recursive: true, force: true });
  };
}
