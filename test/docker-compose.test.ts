/**
 * docker-compose.yml cannot be run here (no Docker engine), so its promises are checked by
 * reading it: Redis that keeps the queue and never evicts, workers that run real commands, and
 * no secret written into the file.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildProgram } from '../src/cli.js';

interface Service {
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
}

const compose = parse(readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8')) as { services: Record<string, Service> };
const commands = new Set(buildProgram().commands.map((command) => command.name()));

describe('docker-compose.yml', () => {
  it('runs Redis with an append-only file and noeviction', () => {
    const command = compose.services.redis!.command!.join(' ');
    expect(command).toContain('--appendonly yes');
    expect(command).toContain('--maxmemory-policy noeviction');
  });

  it('starts only commands the CLI has', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      if (name === 'redis' || !service.command) continue;
      expect(commands, `${name}: ${service.command.join(' ')}`).toContain(service.command[0]);
    }
  });

  it('takes the API key from the environment, never from the file', () => {
    expect(compose.services.worker!.environment!.TOKENHOT_API_KEY).toMatch(/^\$\{TOKENHOT_API_KEY/);
    expect(compose.services.worker!.environment!.REDIS_URL).toBe('redis://redis:6379');
  });

  it('gives workers and the producer the same jobs/ path, so reference images resolve alike', () => {
    expect(compose.services.worker!.volumes).toContain('./jobs:/app/jobs:ro');
    expect(compose.services.producer!.volumes).toContain('./jobs:/app/jobs:ro');
  });
});
