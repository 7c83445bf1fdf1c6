/**
 * `tokenhot-batch resume` / `pause`: the images queue as a whole, e.g. after a worker paused it
 * for a bad key and the key was fixed.
 */
import type { ConfigFlags } from '../../core/config.js';
import { withQueue } from './queue-connection.js';

export async function pauseOrResumeCommand(action: 'pause' | 'resume', flags: ConfigFlags & { prefix?: string }): Promise<number> {
  return withQueue(flags, async ({ images, batches }) => {
    if (action === 'pause') {
      await images.pause();
      await batches.setPauseReason('paused by hand');
      process.stdout.write('images queue paused: workers finish their calls in flight and take no new jobs\n');
    } else {
      const reason = await batches.pauseReason();
      await images.resume();
      await batches.clearPauseReason();
      process.stdout.write(`images queue resumed${reason ? ` (it was paused: ${reason})` : ''}\n`);
    }
    return 0;
  });
}
