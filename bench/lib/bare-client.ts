/**
 * The bare baseline of the overhead benchmark, run as its own process like the product: the
 * least code that gets the same images onto disk. p-limit, fetch, JSON.parse of the whole body,
 * writeFile of the final image. No streaming, no ledger, no sidecar, no temp file, no fsync, no
 * retries: whatever the product does beyond this is its overhead.
 *
 *   node --import tsx bench/lib/bare-client.ts '<BareSpec as JSON>'
 *
 * Prints one JSON line: { "images": N, "failed": N }.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { workloadRows, type WorkloadSpec } from './workload.js';

export interface BareSpec {
  baseUrl: string;
  apiKey: string;
  outDir: string;
  concurrency: number;
  workload: WorkloadSpec;
}

interface Part {
  text?: string;
  thought?: boolean;
  inlineData?: { mimeType?: string; data?: string };
}

interface Answer {
  candidates?: { content?: { parts?: Part[] } }[];
}

const spec = JSON.parse(process.argv[2] ?? '') as BareSpec;
await mkdir(spec.outDir, { recursive: true });
const limit = pLimit(spec.concurrency);
let images = 0;
let failed = 0;

await Promise.all(
  workloadRows(spec.workload).map((row) =>
    limit(async () => {
      const url = `${spec.baseUrl}/v1beta/models/${encodeURIComponent(row.model)}:generateContent/`;
      const response = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${spec.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          contents: [{ role: 'user', parts: [{ text: row.prompt }] }],
          generationConfig: { responseModalities: ['TEXT', 'IMAGE'], imageConfig: { aspectRatio: row.aspectRatio, imageSize: row.imageSize } },
        }),
      });
      const answer = JSON.parse(await response.text()) as Answer;
      // The same rule as the product: thought images are parsed (they are in the body) but only
      // the final image is written.
      const final = (answer.candidates?.[0]?.content?.parts ?? []).find((part) => part.inlineData?.data !== undefined && part.thought !== true);
      if (!response.ok || final?.inlineData?.data === undefined) {
        failed += 1;
        return;
      }
      await writeFile(join(spec.outDir, `${row.id}.jpg`), Buffer.from(final.inlineData.data, 'base64'));
      images += 1;
    }),
  ),
);
process.stdout.write(`${JSON.stringify({ images, failed })}\n`);
