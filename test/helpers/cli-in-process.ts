/**
 * The CLI in this process: `main()` with its stdout and stderr captured and the environment set
 * as a user's shell would have it. Much quicker than a process per call; for what only a real
 * process shows (signals, exit by a second Ctrl-C), use processes.ts.
 */
import { main } from '../../src/cli/program.js';
import type { CliResult } from './processes.js';

/** Runs `tokenhot-batch <args>` in-process; one at a time (it swaps process-wide streams and env). */
export async function runInProcess(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  const savedEnv = { ...process.env };
  for (const key of Object.keys(process.env)) if (key.startsWith('TOKENHOT_') || key === 'REDIS_URL' || key === 'LOG_LEVEL') delete process.env[key];
  for (const [key, value] of Object.entries(env)) if (value !== undefined) process.env[key] = value;
  const writes = { stdout: process.stdout.write, stderr: process.stderr.write };
  let stdout = '';
  let stderr = '';
  const capture =
    (append: (text: string) => void) =>
    (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
      append(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
      const callback = rest.find((arg): arg is () => void => typeof arg === 'function');
      callback?.();
      return true;
    };
  process.stdout.write = capture((text) => (stdout += text)) as typeof process.stdout.write;
  process.stderr.write = capture((text) => (stderr += text)) as typeof process.stderr.write;
  try {
    const code = await main(['node', 'tokenhot-batch', ...args]);
    return { code, signal: null, stdout, stderr };
  } finally {
    process.stdout.write = writes.stdout;
    process.stderr.write = writes.stderr;
    process.exitCode = undefined;
    for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
    Object.assign(process.env, savedEnv);
  }
}
