/**
 * The Redis connection, images queue and batch state a producer-side command needs, opened and
 * closed in one place.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { BatchState } from '../../queue/batch-state.js';
import { loadConfig, type Config, type ConfigFlags } from '../../core/config.js';
import { connectRedis, imagesQueue, queueSettings, type ImageJobData, type QueueSettings } from '../../queue/queue.js';

export interface QueueConnection {
  config: Config;
  settings: QueueSettings;
  connection: Redis;
  images: Queue<ImageJobData>;
  batches: BatchState;
}

export async function withQueue<T>(flags: ConfigFlags & { prefix?: string }, use: (queue: QueueConnection) => Promise<T>): Promise<T> {
  const config = loadConfig(flags);
  const settings = queueSettings(config.redisUrl, flags.prefix);
  const connection = await connectRedis(settings.redisUrl, 'producer');
  const images = imagesQueue(settings, connection);
  try {
    return await use({ config, settings, connection, images, batches: new BatchState(connection, settings.prefix) });
  } finally {
    await images.close();
    connection.disconnect();
  }
}
