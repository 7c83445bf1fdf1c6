/**
 * Numbers given as command-line flags: one rule for all commands, so a typo like `--interval 2s`
 * is refused by name (exit 2) instead of becoming NaN somewhere further in.
 */
import { UsageError } from '../../core/errors.js';

/** A number of at least `min`, or undefined when the flag was not given. */
export function numberFlag(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed) || parsed < min) throw new UsageError(`${name}: "${value}" is not a number of ${min} or more`);
  return parsed;
}

/** A whole number from `min` to `max`, or `fallback` when the flag was not given. */
export function wholeFlag(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isInteger(parsed) || parsed < min || parsed > max) throw new UsageError(`${name}: "${value}" is not a whole number from ${min} to ${max}`);
  return parsed;
}
