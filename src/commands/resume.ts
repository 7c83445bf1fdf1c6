/**
 * `tokenhot-batch resume` / `pause`: the images queue as a whole, e.g. after a worker paused it
 * for a bad key and the key was fixed.
 */
import { BatchState } from '../batch-state.js';
import { loadConfig, type ConfigFlags } from '../config.js';
import { connectRedis, imagesQueue, queueSettings } from '../queue.js';

export async function pauseOrResumeCommand(action: 'pause' | 'resume', flags: ConfigFlags & { prefix?: string }): Promise<number> {
  const config = loadConfig(flags);
  const settings = queueSettings(config.redisUrl, flags.prefix);
  const connection = await connectRedis(settings.redisUrl, 'producer');
  const queue = imagesQueue(settings, connection);
  const state = new BatchState(connection, settings.prefix);
  try {
    if (action === 'pause') {
      await queue.pause();
      await state.setPauseReason('paused by hand');
      process.stdout.write('images queue paused: workers finish their calls in flight and take no new jobs\n');
    } else {
      const reason = await state.pauseReason();
      await queue.resume();
      await state.clearPauseReason();
      process.stdout.write(`images queue resumed${reason ? ` (it was paused: ${reason})` : ''}\n`);
    }
    return 0;
  } finally {
    await queue.close();
    connection.disconnect();
  }
}
