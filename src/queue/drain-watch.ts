import type { BatchState } from './batch-state.js';
import type { imagesQueue } from './queue.js';

/**
 * Calls `onDrained` once nothing is waiting, active or delayed (but jobs parked over budget); or
 * `onPaused` when another worker paused the queue (a bad key, no credits): its waiting jobs will
 * not drain until someone resumes it, so waiting for them would hang.
 */
export function watchDrained(queue: ReturnType<typeof imagesQueue>, batches: BatchState, onDrained: () => void, onPaused: (reason: string | undefined) => void): { stop(): void } {
  let stopped = false;
  const check = async (): Promise<void> => {
    while (!stopped) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      if (stopped) return;
      try {
        if (await queue.isPaused()) {
          onPaused(await batches.pauseReason());
          return;
        }
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
        const { delayed, ...others } = counts;
        if (Object.values(others).every((count) => count === 0) && (delayed ?? 0) <= (await batches.parkedTotal())) {
          onDrained();
          return;
        }
      } catch {
        // Redis away for a moment: try again.
      }
    }
  };
  void check();
  return {
    stop() {
      stopped = true;
    },
  };
}
