/**
 * A gate shared by every call of one process: after a 429 it closes for the delay the provider
 * asked for, and no call starts until it opens again. (Across processes the BullMQ worker uses
 * `queue.rateLimit`, which does the same for every worker on every machine.)
 */
export class RateGate {
  private openAt = 0;

  /** Keeps the gate closed for at least `ms` from now. */
  closeFor(ms: number): void {
    this.openAt = Math.max(this.openAt, Date.now() + ms);
  }

  /** Milliseconds until the gate opens (0 when open). */
  remainingMs(): number {
    return Math.max(0, this.openAt - Date.now());
  }

  /** Resolves when the gate is open; rejects when `signal` aborts. */
  async wait(signal?: AbortSignal): Promise<void> {
    for (let left = this.remainingMs(); left > 0; left = this.remainingMs()) {
      await sleep(left, signal);
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
