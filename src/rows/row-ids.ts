/**
 * Duplicate-id tracking: a row's id names its output files, so it must be safe as a file name and
 * name no other row's files, case aside (macOS and Windows), second images (`<id>-2.png`) included.
 */
import { IdRegistry, type IdOwner } from './id-registry.js';

const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$/;

/** The ids of one file's rows so far. */
export class RowIds {
  private readonly ids = new IdRegistry();
  /** Bases of ids that end in `-<n>` (n ≥ 2), to tell a clash with a second image (`<base>-2.png`). */
  private readonly suffixedBases = new Map<string, IdOwner>();

  /**
   * Takes the id of the row on `line` (`generated`: its default id, as it has none); why it cannot
   * have it, as the `id` column's problem, when it cannot.
   */
  claim(id: string, generated: boolean, line: number): string | undefined {
    const unsafe = generated ? undefined : unsafeIdReason(id);
    if (unsafe) return `"${id}" cannot name output files: ${unsafe}`;
    const owner = this.ids.get(id);
    if (owner) return duplicateReason(id, generated, owner);
    const clash = this.secondImageClash(id, line, generated);
    if (clash) return clash;
    this.ids.add({ id, line, generated });
    return undefined;
  }

  /**
   * Takes a row's default id whatever else is wrong with it (a record whose cells are not
   * checked), so fixing this row later cannot make a clash appear.
   */
  reserveDefault(defaultId: string, line: number): void {
    if (!this.ids.has(defaultId)) this.ids.add({ id: defaultId, line, generated: true });
  }

  /**
   * A row's second image is `<id>-2.<ext>`: so an id `shot-2` and an id `shot` in one file could
   * write the same file. Either order is refused (case-insensitively, as file names go).
   */
  private secondImageClash(id: string, line: number, generated: boolean): string | undefined {
    const suffixed = /^(.+)-(\d+)$/.exec(id);
    if (suffixed && Number(suffixed[2]) >= 2) {
      const base = this.ids.get(suffixed[1]!);
      if (base) return `"${id}" is the file name of image ${Number(suffixed[2])} of row "${base.id}" (line ${base.line}); choose another id`;
      const key = suffixed[1]!.toLowerCase();
      if (!this.suffixedBases.has(key)) this.suffixedBases.set(key, { id, line, generated });
      return undefined;
    }
    const other = this.suffixedBases.get(id.toLowerCase());
    return other ? `"${id}" would name its second, third ... image like the row "${other.id}" (line ${other.line}); choose another id` : undefined;
  }
}

/** An id already taken by the row `owner`, in the words of a row with or without an id of its own. */
function duplicateReason(id: string, generated: boolean, owner: IdOwner): string {
  const whose = owner.generated ? ` (the default id of that row, which has no id)` : '';
  const caseNote = owner.id !== id ? `; ids that differ only in case name the same files on macOS and Windows` : '';
  return generated
    ? `this row has no id and its default id "${id}" is already used on line ${owner.line}${caseNote}; give this row an id`
    : `"${id}" is already the id of line ${owner.line}${whose}${caseNote}`;
}

function unsafeIdReason(id: string): string | undefined {
  if (id.includes('/') || id.includes('\\')) return 'it contains a slash';
  if (id.includes('..')) return 'it contains ".."';
  if (id.length > 120) return 'it is longer than 120 characters';
  if (/\.json$/i.test(id)) return 'it ends in ".json", which would clash with the sidecar files';
  if (/^manifest$/i.test(id)) return 'manifest.csv and manifest.json are the batch\'s manifest; choose another id';
  if (!SAFE_ID.test(id)) return 'use letters, digits, ".", "_" and "-", starting with a letter or digit';
  return undefined;
}
