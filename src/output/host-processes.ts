/**
 * Processes of this host: whether one that left a lock or a ledger segment is still there.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/** This host's name as files name it (a lock's holder, a ledger segment's writer). */
export function safeHostname(): string {
  return hostname().replace(/[^A-Za-z0-9.-]/g, '_');
}

/**
 * Whether a process of this host is still there (one of another user counts as there). A zombie
 * is not: a run killed with SIGKILL whose parent has not reaped it yet (some container inits and
 * CI runners are slow to) holds nothing, though `kill(pid, 0)` still finds it.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/** Linux's `/proc/<pid>/stat` says `Z` after the command name; elsewhere nothing is known. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name, in parentheses, may itself hold spaces or parentheses.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

