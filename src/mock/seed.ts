import { createHash } from 'node:crypto';

/**
 * A deterministic 32-bit number from a text: the mock's colours, token counts and thought
 * signatures follow from the prompt, so a rerun of a test sees the same figures.
 */
export function seedOf(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0);
}

/** Integer in [min, max] picked by `seed` (and a salt, so two picks from one seed differ). */
export function pick(seed: number, salt: number, min: number, max: number): number {
  const mixed = Math.imul(seed ^ Math.imul(salt + 1, 0x9e3779b1), 0x85ebca6b) >>> 0;
  return min + (mixed % (max - min + 1));
}
