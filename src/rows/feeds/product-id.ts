/**
 * Product ids made fit to name output files. The rule is the one rows/csv.ts checks a prompt
 * CSV's ids against (letters, digits, ".", "_" and "-", starting with a letter or digit, no "..",
 * at most 120 characters with the shot name); a feed's ids (Merchant Center's `SKU 12/A`,
 * a PIM's `Café Crème`) are turned into ids that pass it instead of being refused. test/feeds.test.ts
 * reads the ids made here through readRows to keep both in step.
 */

/** Longest product id: leaves room for `--` and a shot name of up to 32 within the 120 of an id. */
export const MAX_PRODUCT_ID_LENGTH = 80;

/**
 * `Café Crème 250g` → `Cafe-Creme-250g`, `SKU 12 / A` → `SKU-12-A`: accents dropped, every run of
 * other characters one "-", ".." one ".", leading characters that are not letters or digits
 * and trailing "-" and "." removed, cut to MAX_PRODUCT_ID_LENGTH, a final `.json` made `-json`,
 * `manifest` made `manifest_`.
 * '' when nothing is left.
 */
export function fileSafeId(raw: string): string {
  const plain = raw.normalize('NFKD').replace(/[\u0300-\u036f]/g, '');
  const safe = plain
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/^[^A-Za-z0-9]+/, '');
  // A row without shots is named by its product id alone, and `<id>.json` is a sidecar's name.
  const id = safe.slice(0, MAX_PRODUCT_ID_LENGTH).replace(/[-.]+$/, '').replace(/\.(json)$/i, '-$1');
  // `manifest.json` is the batch's manifest, not a row's sidecar.
  return /^manifest$/i.test(id) ? `${id}_` : id;
}
