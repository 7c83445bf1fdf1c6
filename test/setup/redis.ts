/**
 * Finds the Redis the tests talk to: REDIS_URL when set, else a private `redis-server` started
 * here on a free port (no disk, stopped after the run). Without a `redis-server` (and no way to
 * install one) the run stops here, before any test, with one line saying what to install. Tests
 * get the URL with `inject('redisUrl')`; each test uses its own queue prefix and removes only
 * its own keys.
 */
import type { ChildProcess } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { freePort, startRedisServer } from '../helpers/redis.js';
import { ensureRedisServer } from '../helpers/redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let child: ChildProcess | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.REDIS_URL) {
    project.provide('redisUrl', process.env.REDIS_URL);
    return async () => {};
  }
  try {
    ensureRedisServer();
  } catch (error) {
    // One line and out, before any test: vitest would wrap a thrown error in a stack trace
    // under "No test files found", which hides what to install.
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(1);
  }
  const port = await freePort();
  child = await startRedisServer(port, ['--appendonly', 'no']);
  project.provide('redisUrl', `redis://127.0.0.1:${port}`);
  return async () => {
    child?.kill('SIGTERM');
  };
}
