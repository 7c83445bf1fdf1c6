/**
 * The rows a benchmark runs, built the same way by the bench itself (as a CSV for the product)
 * and by the bare baselines (as plain objects), so both sides send exactly the same requests.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface WorkloadSpec {
  count: number;
  model: string;
  /** Ignored (and no column written) when `size` is given. */
  imageSize: string;
  aspectRatio: string;
  /** An exact `WxH` (the images endpoint's own sizes, e.g. gpt-image-2's 3840x2160): the CSV's `size` column. */
  size?: string;
  /**
   * The images endpoint answers a link (`data[0].url`) instead of `b64_json`, as a gateway may
   * whatever was asked: the prompt carries the mock's `[mock:as-url]` directive.
   */
  links?: boolean;
}

export interface WorkloadRow {
  id: string;
  prompt: string;
  model: string;
  imageSize: string;
  aspectRatio: string;
  size?: string;
}

/** The mock directive that makes the images endpoint answer a link. */
const AS_LINK = ' [mock:as-url]';

export function workloadRows(spec: WorkloadSpec): WorkloadRow[] {
  return Array.from({ length: spec.count }, (_, i) => ({
    id: `b${String(i + 1).padStart(6, '0')}`,
    // Distinct prompts (as in a real catalog), plain words: no `[mock:...]` directive but the link one.
    prompt: `studio photo of product ${i + 1}, a ceramic mug in warm light, white background${spec.links ? AS_LINK : ''}`,
    model: spec.model,
    imageSize: spec.imageSize,
    aspectRatio: spec.aspectRatio,
    ...(spec.size ? { size: spec.size } : {}),
  }));
}

export async function writeWorkloadCsv(path: string, rows: WorkloadRow[]): Promise<void> {
  // An exact size goes alone: a row with image_size or aspect_ratio beside it is refused.
  const exact = rows.some((row) => row.size !== undefined);
  const lines = [exact ? 'id,prompt,model,size' : 'id,prompt,model,image_size,aspect_ratio'];
  // Prompts hold commas, so they are quoted; they hold no quotes.
  for (const row of rows) {
    const options = exact ? (row.size ?? '') : `${row.imageSize},${row.aspectRatio}`;
    lines.push(`${row.id},"${row.prompt}",${row.model},${options}`);
  }
  await writeFile(path, `${lines.join('\n')}\n`);
}

/** Writes the workload as `<dir>/<name>` and returns that path. */
export async function workloadCsv(dir: string, name: string, spec: WorkloadSpec): Promise<string> {
  const path = join(dir, name);
  await writeWorkloadCsv(path, workloadRows(spec));
  return path;
}
