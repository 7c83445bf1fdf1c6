/**
 * The rows a benchmark runs, built the same way by the bench itself (as a CSV for the product)
 * and by the bare baselines (as plain objects), so both sides send exactly the same requests.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface WorkloadSpec {
  count: number;
  model: string;
  imageSize: string;
  aspectRatio: string;
}

export interface WorkloadRow {
  id: string;
  prompt: string;
  model: string;
  imageSize: string;
  aspectRatio: string;
}

export function workloadRows(spec: WorkloadSpec): WorkloadRow[] {
  return Array.from({ length: spec.count }, (_, i) => ({
    id: `b${String(i + 1).padStart(6, '0')}`,
    // Distinct prompts (as in a real catalog), plain words: no `[mock:...]` directive.
    prompt: `studio photo of product ${i + 1}, a ceramic mug in warm light, white background`,
    model: spec.model,
    imageSize: spec.imageSize,
    aspectRatio: spec.aspectRatio,
  }));
}

export async function writeWorkloadCsv(path: string, rows: WorkloadRow[]): Promise<void> {
  const lines = ['id,prompt,model,image_size,aspect_ratio'];
  // Prompts hold commas, so they are quoted; they hold no quotes.
  for (const row of rows) lines.push(`${row.id},"${row.prompt}",${row.model},${row.imageSize},${row.aspectRatio}`);
  await writeFile(path, `${lines.join('\n')}\n`);
}

/** Writes the workload as `<dir>/<name>` and returns that path. */
export async function workloadCsv(dir: string, name: string, spec: WorkloadSpec): Promise<string> {
  const path = join(dir, name);
  await writeWorkloadCsv(path, workloadRows(spec));
  return path;
}
