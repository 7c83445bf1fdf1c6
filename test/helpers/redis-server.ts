/**
 * Finds the `redis-server` the tests start when REDIS_URL is not set. As root on Debian a
 * missing one is installed with apt-get (as `.ci/run` on a fresh machine needs); anywhere else
 * the run stops before any test with one line saying what to install.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export const MISSING_REDIS =
  'redis-server not found on PATH: the tests need Redis. Install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL to a Redis the tests may use.';

/** The first executable `redis-server` on `path`, if any. */
export function findRedisServer(path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface RedisServerOptions {
  path?: string;
  /** Whether apt-get may be used: root on a Debian-like machine. */
  canInstall?: boolean;
  install?: () => void;
  log?: (line: string) => void;
}

/** The path of `redis-server`, installed first when allowed; else an Error of one line. */
export function ensureRedisServer(options: RedisServerOptions = {}): string {
  const { path, canInstall = isRootOnDebian(), install = aptGetInstallRedis, log = (line) => process.stderr.write(`${line}\n`) } = options;
  const found = findRedisServer(path);
  if (found) return found;
  if (canInstall) {
    log("redis-server not found: installing Debian's redis-server with apt-get (running as root)");
    try {
      install();
    } catch (error) {
      throw new Error(`${MISSING_REDIS} (apt-get failed: ${(error as Error).message})`);
    }
    const installed = findRedisServer(path);
    if (installed) return installed;
  }
  throw new Error(MISSING_REDIS);
}

function isRootOnDebian(): boolean {
  return process.getuid?.() === 0 && existsSync('/etc/debian_version') && existsSync('/usr/bin/apt-get');
}

function aptGetInstallRedis(): void {
  // dpkg's maintainer scripts need the system folders, whatever PATH the tests were given.
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', PATH: [process.env.PATH, '/usr/sbin', '/usr/bin', '/sbin', '/bin'].filter(Boolean).join(delimiter) };
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', 'redis-server']]) {
    const result = spawnSync('/usr/bin/apt-get', args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (result.error) throw result.error;
    if (result.status !== 0) {
      const said = `${result.stderr ?? ''}${result.stdout ?? ''}`.trim().split('\n').pop();
      throw new Error(`apt-get ${args[0]} exited with ${result.status ?? result.signal}${said ? `: ${said}` : ''}`);
    }
  }
}
