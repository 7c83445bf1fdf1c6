/**
 * The Chromium that ships inside the `@sparticuz/chromium` npm package (a devDependency): brotli
 * files in the package, unpacked once per installed version into node_modules/.cache, so
 * `npm ci && npm test` needs no apt and downloads nothing.
 *
 * The package's own `executablePath()` unpacks into the shared os.tmpdir() and treats any
 * `/tmp/chromium` as finished, so two test files starting at once (vitest runs two workers), or
 * a run killed mid-way, could launch a half-written binary. Here each caller unpacks into a
 * private staging folder and renames it into place: the version's folder exists only complete,
 * and whoever renames second throws its copy away.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from '../helpers/root.js';

export const PACKAGE_DIR = join(ROOT, 'node_modules', '@sparticuz', 'chromium');
export const CACHE_DIR = join(ROOT, 'node_modules', '.cache', 'tokenhot-chromium');

/** What playwright-core needs to launch it: the binary and the environment it runs in. */
export interface BundledChromium {
  executablePath: string;
  env: Record<string, string>;
}

/** Fills a staging folder with the unpacked browser (a stand-in in the tests of the race). */
export type Unpacker = (staging: string) => Promise<void>;

/** The package's bundled browser, unpacked into `cacheDir/<version>` unless it already is. */
export async function bundledChromium(cacheDir = CACHE_DIR, unpacker: Unpacker = unpackWithPackage): Promise<BundledChromium> {
  const manifest = join(PACKAGE_DIR, 'package.json');
  if (!existsSync(manifest)) {
    throw new Error(`${PACKAGE_DIR} not found: run \`npm ci\` (the browser tests use the Chromium of the @sparticuz/chromium devDependency), or set TOKENHOT_TEST_CHROMIUM to a Chromium of your own`);
  }
  const { version } = JSON.parse(await readFile(manifest, 'utf8')) as { version: string };
  const dir = join(cacheDir, version);
  if (!existsSync(dir)) await unpack(cacheDir, dir, unpacker);
  return {
    executablePath: join(dir, 'chromium'),
    env: {
      // Its own copies of libnss3, libnspr4 and libexpat: a bare Debian has none of them.
      LD_LIBRARY_PATH: [join(dir, 'al2023', 'lib'), process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
      FONTCONFIG_FILE: join(dir, 'fonts.conf'),
    },
  };
}

async function unpack(cacheDir: string, dir: string, unpacker: Unpacker): Promise<void> {
  await mkdir(cacheDir, { recursive: true });
  await removeAbandoned(cacheDir);
  // Same file system as `dir`, so the rename below is atomic.
  const staging = await mkdtemp(join(cacheDir, '.unpacking-'));
  try {
    await unpacker(staging);
    // Its bundled Open Sans, plus the machine's own fonts and settings where it has any (a bare
    // machine has none, and pages would render without text).
    await writeFile(
      join(staging, 'fonts.conf'),
      `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n  <dir>${join(dir, 'fonts', 'fonts')}</dir>\n  <cachedir>${join(dir, 'fonts-cache')}</cachedir>\n</fontconfig>\n`,
    );
    await rename(staging, dir);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    // Another test file finished first: its copy is as good as ours.
    if (existsSync(join(dir, 'chromium'))) return;
    throw error;
  }
}

/**
 * Runs the package's own unpacking in a child process whose temporary folder is `staging`. No
 * URL is passed, so it reads only the files inside the package (never the network). It unpacks
 * the libraries it bundles only where it believes it runs on Amazon Linux 2023; the variable
 * below says so, in the child only.
 */
export async function unpackWithPackage(staging: string): Promise<void> {
  const script = "import chromium from '@sparticuz/chromium'; process.stdout.write(await chromium.executablePath());";
  const child = spawn(process.execPath, ['--input-type=module', '--eval', script], {
    cwd: ROOT,
    env: { ...process.env, TMPDIR: staging, AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs20.x' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  const expected = join(staging, 'chromium');
  if (code !== 0 || stdout !== expected || !existsSync(join(staging, 'al2023', 'lib', 'libnss3.so'))) {
    throw new Error(`unpacking @sparticuz/chromium into ${staging} failed (exit ${code}, printed ${JSON.stringify(stdout)}): ${stderr.trim()}`);
  }
}

/** Staging folders of runs killed while unpacking (each about 200 MB). */
async function removeAbandoned(cacheDir: string): Promise<void> {
  const hourAgo = Date.now() - 3_600_000;
  for (const name of await readdir(cacheDir)) {
    if (!name.startsWith('.unpacking-')) continue;
    const path = join(cacheDir, name);
    const info = await stat(path).catch(() => undefined);
    if (info && info.mtimeMs < hourAgo) await rm(path, { recursive: true, force: true });
  }
}
