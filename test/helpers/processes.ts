/**
 * The CLI as a user runs it: a separate process, over real HTTP, with real files.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { inject } from 'vitest';
import type { MockRequestRecord } from '../../src/mock/records.js';
import { ROOT } from './root.js';

export { ROOT };
/** The CLI compiled for this test run (test/setup/cli-build.ts); source maps keep stack traces on src/. */
const BIN = ['--enable-source-maps', inject('cliEntry')];

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Environment without the caller's Tokenhot/Redis settings, plus `env`. */
export function cleanEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(base)) if (key.startsWith('TOKENHOT_') || key === 'REDIS_URL' || key === 'LOG_LEVEL') delete base[key];
  return { ...base, ...env };
}

export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  done: Promise<CliResult>;
}

export function startCli(args: string[], env: Record<string, string | undefined> = {}): CliProcess {
  const child = spawn(process.execPath, [...BIN, ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = once(child, 'close').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null, stdout, stderr }));
  return { child, stdout: () => stdout, stderr: () => stderr, done };
}

export async function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return startCli(args, env).done;
}

export interface MockProcess {
  url: string;
  child: ChildProcess;
  requests(): Promise<MockRecord[]>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** What the mock logged per request, as its `/__mock/requests` endpoint serves it. */
export type MockRecord = MockRequestRecord;

/** `tokenhot-batch mock-server` in its own process, on a free port. */
export async function startMockProcess(args: string[] = [], env: Record<string, string | undefined> = {}): Promise<MockProcess> {
  const cli = startCli(['mock-server', '--port', '0', ...args], env);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mock-server did not start: ${cli.stderr()}`)), 20_000);
    const onData = (): void => {
      const match = cli.stderr().match(/mock endpoint on (http:\/\/[\d.:]+)/);
      if (match) {
        clearTimeout(timer);
        cli.child.stderr!.off('data', onData);
        resolve(match[1]!);
      }
    };
    cli.child.stderr!.on('data', onData);
    cli.child.once('exit', () => reject(new Error(`mock-server exited: ${cli.stderr()}`)));
  });
  return {
    url,
    child: cli.child,
    async requests() {
      const response = await fetch(`${url}/__mock/requests`);
      return (await response.json()) as MockRecord[];
    },
    async reset() {
      await fetch(`${url}/__mock/reset`, { method: 'POST' });
    },
    async stop() {
      if (cli.child.exitCode === null) {
        cli.child.kill('SIGTERM');
        await cli.done;
      }
    },
  };
}
