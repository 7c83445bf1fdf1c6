/**
 * docker-compose.yml and the Dockerfile cannot be run here (no Docker engine), so their promises
 * are checked by reading them: Redis that keeps the queue and never evicts, workers that run real
 * commands under an init, an output folder the `node` user can write, and no secret written
 * into the file.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildProgram } from '../src/cli/program.js';

interface Mount {
  type: string;
  source: string;
  target: string;
  bind?: { create_host_path?: boolean };
}

interface Service {
  build?: string;
  init?: boolean;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: (string | Mount)[];
}

const compose = parse(readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8')) as { services: Record<string, Service> };
const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
/** The instructions of the image's last stage, one per line (continuations joined). */
const finalStage = dockerfile
  .replace(/\\\n/g, ' ')
  .split(/^FROM /m)
  .pop()!
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'));
const OUTPUT = '/data/output';
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

  it('runs every service of the image under an init, so signals and children are handled as on a host', () => {
    const ofImage = Object.entries(compose.services).filter(([, service]) => service.build);
    expect(ofImage.map(([name]) => name)).toEqual(['worker', 'producer', 'cli']);
    for (const [name, service] of ofImage) expect(service.init, name).toBe(true);
  });

  it('never lets the Docker daemon create the host output folder (it would be root-owned)', () => {
    const outputMounts = Object.values(compose.services).flatMap((service) => (service.volumes ?? []).filter((volume) => (typeof volume === 'string' ? volume.split(':')[1] : volume.target) === OUTPUT));
    expect(outputMounts.length).toBe(2);
    for (const mount of outputMounts) {
      // A short `./output:/data/output` would have the daemon mkdir ./output as root.
      expect(mount).toEqual({ type: 'bind', source: './output', target: OUTPUT, bind: { create_host_path: false } });
    }
    // The README says what that folder needs before the first `up`.
    expect(readme).toContain('mkdir -p output');
    expect(readme).toMatch(/uid 1000/);
  });
});

describe('Dockerfile', () => {
  it('makes the output folder, owned by node, before declaring it a volume and dropping root', () => {
    const made = finalStage.findIndex((line) => /^RUN .*mkdir -p \/data\/output\b.*chown node:node \/data\/output\b/.test(line));
    const volume = finalStage.findIndex((line) => line.startsWith('VOLUME') && line.includes(OUTPUT));
    const user = finalStage.indexOf('USER node');
    expect(made, finalStage.join('\n')).toBeGreaterThanOrEqual(0);
    // Changes to a path after VOLUME declares it are thrown away, and only root may chown.
    expect(made).toBeLessThan(volume);
    expect(made).toBeLessThan(user);
    expect(finalStage.some((line) => line.startsWith('ENV') && line.includes(`TOKENHOT_OUT_DIR=${OUTPUT}`))).toBe(true);
  });
});
