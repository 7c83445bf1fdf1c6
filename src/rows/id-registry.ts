/** Where a file's row ids are kept to the end of the file, in little memory; the rules for ids are in row-ids.ts. */

/** The row that took an id: its id as written, its line, and whether the id is its default one. */
export interface IdOwner {
  id: string;
  line: number;
  generated: boolean;
}

/**
 * The ids seen so far, compared without regard to case (ids that differ only in case name the
 * same files on macOS and Windows). Every row's id stays here to the end of the file, so it is
 * kept off the JavaScript heap, in typed arrays: a few dozen bytes a row (the id's characters,
 * where they are, its line, hash slots) where a Map of strings and objects takes over 100, and
 * where a heap that holds 100k objects to the end also grows far beyond them. Ids here are ASCII (safe ids and
 * default ids); any other goes to a plain Map by its lower-cased form, so the rule is
 * `a.toLowerCase() === b.toLowerCase()` whatever the ids are.
 */
export class IdRegistry {
  private text = Buffer.allocUnsafe(64 * 1024);
  private textUsed = 0;
  /** Per id, in the order added: where its characters start in `text`, how many, its line (×2, +1 for a default id). */
  private starts = new Uint32Array(1024);
  private lengths = new Uint16Array(1024);
  private codes = new Float64Array(1024);
  private count = 0;
  /** Open addressing: an id's number + 1, or 0 for a free slot. Never more than half full. */
  private slots = new Uint32Array(2048);
  private readonly others = new Map<string, IdOwner>();

  has(id: string): boolean {
    return this.get(id) !== undefined;
  }

  get(id: string): IdOwner | undefined {
    if (fitsText(id)) return this.find(id) ?? (this.others.size > 0 ? this.others.get(id.toLowerCase()) : undefined);
    // Lower-casing some non-ASCII letters gives ASCII ones (the Kelvin sign gives "k").
    const lower = id.toLowerCase();
    return this.others.get(lower) ?? (fitsText(lower) ? this.find(lower) : undefined);
  }

  private find(id: string): IdOwner | undefined {
    const mask = this.slots.length - 1;
    for (let slot = hashLower(id) & mask; ; slot = (slot + 1) & mask) {
      const entry = this.slots[slot]!;
      if (entry === 0) return undefined;
      const index = entry - 1;
      if (this.sameLower(index, id)) {
        const start = this.starts[index]!;
        const code = this.codes[index]!;
        return { id: this.text.toString('latin1', start, start + this.lengths[index]!), line: Math.floor(code / 2), generated: code % 2 === 1 };
      }
    }
  }

  /** Adds an id not in the registry yet (see `get`). */
  add(owner: IdOwner): void {
    const { id } = owner;
    if (!fitsText(id)) {
      this.others.set(id.toLowerCase(), owner);
      return;
    }
    if (this.count === this.starts.length) this.growEntries();
    if ((this.count + 1) * 2 > this.slots.length) this.growSlots();
    if (this.textUsed + id.length > this.text.length) {
      const text = Buffer.allocUnsafe(Math.max(this.text.length * 2, this.textUsed + id.length));
      this.text.copy(text, 0, 0, this.textUsed);
      this.text = text;
    }
    const index = this.count++;
    this.starts[index] = this.textUsed;
    this.lengths[index] = id.length;
    this.codes[index] = owner.line * 2 + (owner.generated ? 1 : 0);
    this.textUsed += this.text.write(id, this.textUsed, 'latin1');
    this.place(index, hashLower(id));
  }

  private place(index: number, hash: number): void {
    const mask = this.slots.length - 1;
    let slot = hash & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = index + 1;
  }

  private sameLower(index: number, id: string): boolean {
    const length = this.lengths[index]!;
    if (length !== id.length) return false;
    const start = this.starts[index]!;
    for (let i = 0; i < length; i++) if (lowerAscii(this.text[start + i]!) !== lowerAscii(id.charCodeAt(i))) return false;
    return true;
  }

  private growEntries(): void {
    const size = this.starts.length * 2;
    const starts = new Uint32Array(size);
    starts.set(this.starts);
    this.starts = starts;
    const lengths = new Uint16Array(size);
    lengths.set(this.lengths);
    this.lengths = lengths;
    const codes = new Float64Array(size);
    codes.set(this.codes);
    this.codes = codes;
  }

  private growSlots(): void {
    this.slots = new Uint32Array(this.slots.length * 2);
    for (let index = 0; index < this.count; index++) {
      const start = this.starts[index]!;
      this.place(index, hashLower(this.text.toString('latin1', start, start + this.lengths[index]!)));
    }
  }
}

function lowerAscii(code: number): number {
  return code >= 0x41 && code <= 0x5a ? code | 0x20 : code;
}

/** Whether `IdRegistry` keeps an id in its typed arrays: ASCII, and short enough to count in 16 bits. */
function fitsText(text: string): boolean {
  if (text.length > 0xffff) return false;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** FNV-1a of the lower-cased characters. */
function hashLower(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ lowerAscii(text.charCodeAt(i)), 0x01000193);
  return hash >>> 0;
}
