/**
 * A row's reference images: how many its model takes, and whether each file can be sent (it
 * exists, is an image of a type the model takes, within its size limits). Each file is looked at
 * once per path, however many rows use it.
 */
import { stat } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { readImageMime, type ImageMime } from './image-type.js';
import { isPhotoUrl, type PhotoCache } from './photo-cache.js';
import type { ModelRules } from '../providers/models.js';
import type { ReferenceRules } from '../providers/row-options.js';

/** A file that can be read, with its type by content (none: not an image); or why it cannot. */
type ReferenceCheck = { ok: true; size: number; mime?: ImageMime; unchecked?: true } | { ok: false; reason: string };

function checkReference(absolute: string): Promise<ReferenceCheck> {
  return (async (): Promise<ReferenceCheck> => {
    try {
      const info = await stat(absolute);
      if (!info.isFile()) return { ok: false, reason: 'is not a file' };
      const mime = await readImageMime(absolute);
      return mime ? { ok: true, size: info.size, mime } : { ok: true, size: info.size };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, reason: 'does not exist' };
      if (code === 'EACCES' || code === 'EPERM') return { ok: false, reason: 'cannot be read (permission denied)' };
      return { ok: false, reason: `cannot be read (${code ?? String(error)})` };
    }
  })();
}

function formatMb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** Why a row cannot send `count` reference images to `model`; undefined when it can. */
export function referenceCountReason(count: number, model: string, rules: ReferenceRules): string | undefined {
  if (count <= rules.max) return undefined;
  return rules.max === 0 ? `${model} takes no reference images` : `${count} images, but ${model} takes at most ${rules.max}`;
}

/** A photo named by URL, fetched into the cache and looked at there; unchecked without a cache. */
async function checkPhoto(url: string, photos: PhotoCache | undefined): Promise<ReferenceCheck> {
  if (!photos) return { ok: true, size: 0, unchecked: true };
  const result = await photos.get(url);
  return result.ok ? { ok: true, size: result.photo.bytes, mime: result.photo.mime } : { ok: false, reason: `cannot be fetched: ${result.reason}` };
}

/** The reference image files of one CSV, each looked at once. */
export class ReferenceFiles {
  private readonly checks = new Map<string, Promise<ReferenceCheck>>();

  constructor(private readonly photos?: PhotoCache) {}

  /**
   * The `reference_images` problems of a row naming `refs` (as written; `absolutes` resolved
   * against the CSV's folder): each file that cannot be sent, in order, then their total size.
   */
  async problems(refs: readonly string[], absolutes: readonly string[], model: string, rules: ModelRules): Promise<string[]> {
    const checks = await Promise.all(absolutes.map((absolute) => this.check(absolute)));
    const problems: string[] = [];
    let total = 0;
    checks.forEach((check, i) => {
      const reason = fileReason(check, model, rules);
      if (reason === undefined) {
        total += check.ok ? check.size : 0;
        return;
      }
      const ref = refs[i] ?? '';
      const where = isAbsolute(ref) || isPhotoUrl(ref) ? '' : ` (looked for ${absolutes[i] ?? ref})`;
      const tilde = ref.startsWith('~') ? '; "~" is not expanded, write the full path' : '';
      problems.push(`"${ref}" ${reason}${where}${tilde}`);
    });
    const maxTotal = rules.references.maxBytesTotal;
    if (problems.length === 0 && maxTotal !== undefined && total > maxTotal) {
      problems.push(`the images total ${formatMb(total)}, over the ${maxTotal / (1024 * 1024)} MB a request's inline data is limited to`);
    }
    return problems;
  }

  private check(absolute: string): Promise<ReferenceCheck> {
    let check = this.checks.get(absolute);
    if (!check) {
      check = isPhotoUrl(absolute) ? checkPhoto(absolute, this.photos) : checkReference(absolute);
      this.checks.set(absolute, check);
    }
    return check;
  }
}

/** Why one file cannot be sent to `model` as a reference image; undefined when it can. */
function fileReason(check: ReferenceCheck, model: string, rules: ModelRules): string | undefined {
  const refRules = rules.references;
  if (!check.ok) return check.reason;
  if (check.unchecked) return undefined;
  if (!check.mime) return `is not a ${refRules.typeNames} image (judged by its content, not its name)`;
  if (!refRules.mimeTypes.includes(check.mime)) return `is ${check.mime}; reference images${rules.provider === 'gemini' ? '' : ` for ${model}`} must be ${refRules.typeNames}`;
  if (refRules.maxBytesEach !== undefined && check.size > refRules.maxBytesEach) {
    return `is ${formatMb(check.size)}, over the ${refRules.maxBytesEach / (1024 * 1024)} MB ${model} takes per image`;
  }
  return undefined;
}
