/**
 * Where the test setup gets `redis-server` from when REDIS_URL is not set: PATH, else (root on
 * Debian) apt-get, else one line saying what to install. PATH and the installer are stand-ins
 * here, so nothing is installed or removed on this machine.
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRedisServer, MISSING_REDIS } from './helpers/redis-server.js';

let empty: string;
let bin: string;

/** An executable named redis-server (the setup only looks for it here). */
function fakeRedisServerSync(dir: string): string {
  const path = join(dir, 'redis-server');
  writeFileSync(path, '#!/bin/sh\n', { mode: 0o755 });
  return path;
}

beforeAll(async () => {
  empty = await mkdtemp(join(tmpdir(), 'thb-path-empty-'));
  bin = await mkdtemp(join(tmpdir(), 'thb-path-bin-'));
});

afterAll(async () => {
  await rm(empty, { recursive: true, force: true });
  await rm(bin, { recursive: true, force: true });
});

describe('redis-server for the tests', () => {
  it('is taken from PATH when there, without installing anything', async () => {
    const server = fakeRedisServerSync(bin);
    const installs: string[] = [];
    expect(ensureRedisServer({ path: `${empty}:${bin}`, canInstall: true, install: () => installs.push('apt') })).toBe(server);
    expect(installs).toEqual([]);
  });

  it('stops with one line saying what to install when it cannot install', () => {
    const lines: string[] = [];
    expect(() => ensureRedisServer({ path: empty, canInstall: false, log: (line) => lines.push(line) })).toThrow(MISSING_REDIS);
    expect(lines).toEqual([]);
    expect(MISSING_REDIS).not.toContain('\n');
    expect(MISSING_REDIS).toContain('apt-get install redis-server');
    expect(MISSING_REDIS).toContain('REDIS_URL');
  });

  it('is installed first as root on Debian, saying so', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'thb-path-apt-'));
    try {
      const lines: string[] = [];
      const server = ensureRedisServer({ path: dir, canInstall: true, install: () => fakeRedisServerSync(dir), log: (line) => lines.push(line) });
      expect(server).toBe(join(dir, 'redis-server'));
      expect(lines).toEqual(["redis-server not found: installing Debian's redis-server with apt-get (running as root)"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('says what to install, and why apt-get did not, when apt-get fails', () => {
    const failing = (): void => {
      throw new Error('apt-get update exited with 100: Temporary failure resolving deb.debian.org');
    };
    expect(() => ensureRedisServer({ path: empty, canInstall: true, install: failing, log: () => undefined })).toThrow(
      `${MISSING_REDIS} (apt-get failed: apt-get update exited with 100: Temporary failure resolving deb.debian.org)`,
    );
  });
});
