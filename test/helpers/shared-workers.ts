/**
 * Several `work` processes on one batch, each sure to take rows: the mock holds its answers until
 * every worker is up, so the first one cannot drain a small batch alone before the others start.
 */
import { startCli, type CliProcess, type MockProcess } from './processes.js';

export async function startSharingWorkers(mock: MockProcess, count: number, args: string[], env: Record<string, string>): Promise<CliProcess[]> {
  await fetch(`${mock.url}/__mock/hold`, { method: 'POST' });
  const workers = Array.from({ length: count }, () => startCli(['work', ...args], env));
  const deadline = Date.now() + 20_000;
  while (!workers.every((worker) => /worker started/.test(worker.stdout() + worker.stderr())) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  // Each has asked for its first jobs by now; their calls wait at the mock.
  await new Promise((resolve) => setTimeout(resolve, 500));
  await fetch(`${mock.url}/__mock/release`, { method: 'POST' });
  return workers;
}
