/**
 * The parts a row needs (providers, output store, ledger, price table), built once per process
 * from the configuration and shared by both runners. A queued row whose job names an output of
 * its own (`out:`) is written there: `forOutput` opens that output once, beside the process's own,
 * with the same providers and prices.
 */
import { requireApiKey, type Config } from '../core/config.js';
import { GeminiProvider } from '../providers/gemini/client.js';
import { ImageLinks } from '../providers/image-link.js';
import { OpenAiImagesProvider } from '../providers/openai-images/client.js';
import { ProviderRouter } from '../providers/router.js';
import type { RowContext } from './generate.js';
import { loadPriceTable } from '../cost/pricing.js';
import { openOutput, type Output } from '../output/open-output.js';
import { absoluteOutput } from '../output/location.js';
import { PhotoCache, photoCacheDir } from '../rows/photo-cache.js';

export interface Pipeline extends RowContext {
  /**
   * The parts for a row written to `out` (unset: this process's own output). Opened at the first
   * row that names it and kept until `close`; one that cannot be used throws, and is tried again
   * by the next row that names it.
   */
  forOutput(out: string | undefined): Promise<RowContext>;
  close(): Promise<void>;
}

/** An output with its photo cache (of this machine: in the output folder, or a bucket's spool). */
interface OpenedOutput {
  output: Output;
  photos: PhotoCache;
}

export async function createPipeline(config: Config): Promise<Pipeline> {
  const prices = await loadPriceTable(config);
  const apiKey = requireApiKey(config);
  // A worker runs for days: it asks the shop again after a minute whether a photo changed.
  const open = async (out: string): Promise<OpenedOutput> => {
    // A folder, or a bucket with this machine's spool folder for temporary files and the ledger.
    const output = await openOutput(out, { durable: config.durable });
    return { output, photos: new PhotoCache(photoCacheDir(output.store.workDir), { apiKey, freshForMs: 60_000 }) };
  };
  // The process's own output: one that cannot be used stops the command here, before any row is sent (and billed).
  const own = await open(config.outDir);
  const outputs = new Map<string, Promise<OpenedOutput>>([[absoluteOutput(config.outDir), Promise.resolve(own)]]);
  // Image links are other hosts' (CDNs, buckets): their own pool, and never the key.
  const links = new ImageLinks({ connections: config.concurrency, apiKey });
  const provider = new ProviderRouter({
    gemini: new GeminiProvider({
      baseUrl: config.baseUrl,
      apiKey,
      timeoutMs: config.timeoutMs,
      responseModalities: config.responseModalities,
      connections: config.concurrency,
      links,
    }),
    'openai-images': new OpenAiImagesProvider({
      baseUrl: config.baseUrl,
      apiKey,
      timeoutMs: config.timeoutMs,
      connections: config.concurrency,
      links,
    }),
  });
  const contextOf = ({ output, photos }: OpenedOutput): RowContext => ({ provider, store: output.store, ledger: output.ledger, prices, photos });
  return {
    ...contextOf(own),
    async forOutput(out) {
      if (out === undefined) return contextOf(own);
      const key = absoluteOutput(out);
      let opened = outputs.get(key);
      if (!opened) {
        opened = open(key);
        outputs.set(key, opened);
        // Not kept when it fails: the bucket may be made, or its credentials given, meanwhile.
        opened.catch(() => outputs.delete(key));
      }
      return contextOf(await opened);
    },
    async close() {
      const opened = (await Promise.allSettled(outputs.values())).flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
      // Each output closes (and ships its spool) even when another one fails to.
      const closed = await Promise.allSettled(opened.map(async ({ photos, output }) => {
        await photos.close();
        await output.close();
      }));
      await provider.close();
      await links.close();
      const failed = closed.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      if (failed) throw failed.reason;
    },
  };
}
