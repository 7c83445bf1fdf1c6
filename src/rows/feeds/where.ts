/**
 * `where:` filters on a feed's columns, so a team can run one vendor or one product type:
 * `{ Vendor: "Acme" }` (equals), `{ Type: ["Mugs", "Bowls"] }` (one of), `{ "Image Src":
 * { not_empty: true } }`. Every condition must hold. Values compare trimmed and regardless of
 * case (`mugs` finds `Mugs`): a filter that silently finds nothing costs a team a night's run.
 */
import { z } from 'zod';

/** YAML reads `Variant Grams: 250` as a number; it is compared as the text `250`. */
const scalar = z.union([z.string(), z.number(), z.boolean()]);

export const whereSchema = z.record(
  z.string().min(1),
  z.union([scalar, z.array(scalar).min(1), z.object({ not_empty: z.literal(true) }).strict()], {
    error: 'give a value, a list of values, or { not_empty: true }',
  }),
);

export type Where = z.infer<typeof whereSchema>;

/** The columns a filter names that are not among `available` (compared regardless of case). */
export function whereMissingColumns(where: Where, available: readonly string[]): string[] {
  const known = new Set(available.map((name) => name.toLowerCase()));
  return Object.keys(where).filter((column) => !known.has(column.toLowerCase()));
}

/** Whether a product's fields meet every condition; `valueOf` looks a column up (see template.ts's fieldLookup). */
export function matchesWhere(where: Where, valueOf: (column: string) => string | undefined): boolean {
  return Object.entries(where).every(([column, condition]) => {
    const value = normalized(valueOf(column) ?? '');
    if (Array.isArray(condition)) return condition.some((wanted) => normalized(String(wanted)) === value);
    if (typeof condition === 'object') return value !== '';
    return normalized(String(condition)) === value;
  });
}

function normalized(value: string): string {
  return value.trim().toLowerCase();
}
