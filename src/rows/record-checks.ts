/**
 * The checks of one record of a prompt CSV, column by column: a record reads as its row, or as
 * every problem it has, in column order (id, prompt, model, the model's options, reference images,
 * unnamed columns), so that one pass fixes the file.
 */
import { resolve } from 'node:path';
import { delimiterName } from './delimiter.js';
import { cellOf, type Header } from './header.js';
import type { RowRead } from './problems.js';
import type { ReadRowsOptions } from './reading-options.js';
import { ReferenceFiles, referenceCountReason } from './reference-images.js';
import { isPhotoUrl } from './photo-cache.js';
import { RowIds } from './row-ids.js';
import { DEFAULT_MODEL, normalizeImageSize, rulesOf, unknownModelReason, type ModelRules } from '../providers/models.js';
import type { CheckedOptions, OptionValue } from '../providers/row-options.js';
import type { Row } from '../core/types.js';

const MODEL_ID = /^[a-z0-9][a-z0-9.-]*$/i;

/** Records a problem of the record being checked, in one of its columns ('' for the whole record). */
type Report = (column: string, reason: string) => void;

/** A row's model: its id (the row's, else the default), whether that is a model id at all, and what the model takes. */
interface RowModel {
  id: string;
  ok: boolean;
  rules: ModelRules;
}

/** The checks of one file's records, with what they keep from record to record (ids, models, reference files). */
export class RecordChecks {
  private readonly ids = new RowIds();
  private readonly referenceFiles: ReferenceFiles;
  /**
   * A file names a handful of models; looking each up once per row is a measurable cost at 100k
   * rows. Bounded, so a file of made-up model names does not grow it without end.
   */
  private readonly models = new Map<string, ModelRules>();
  /** Unknown model ids already told of (bounded: a warning per id, not a list of a whole file's). */
  private readonly toldUnknown = new Set<string>();
  private readonly defaultSize: string | undefined;

  constructor(
    private readonly file: string,
    /** The CSV's folder: reference images are named relative to it. */
    private readonly folder: string,
    private readonly options: ReadRowsOptions,
    private readonly delimiter: string,
  ) {
    this.referenceFiles = new ReferenceFiles(options.photos);
    const imageSize = options.defaults.imageSize;
    this.defaultSize = imageSize === undefined ? undefined : normalizeImageSize(imageSize) || undefined;
  }

  /**
   * The row, or every problem of the record, in column order. `number` counts the records after
   * the header (a row's default id). Synchronous unless the row names reference images (their
   * files are looked at).
   */
  check(record: string[], line: number, number: number, header: Header, headerLine: number): RowRead[] | Promise<RowRead[]> {
    const defaultId = `row-${String(number).padStart(5, '0')}`;
    if (record.length !== header.columns.length) {
      // The cells no longer line up with the header, so checking them one by one would only mislead.
      // Its default id is still taken, so fixing this row later cannot make a clash appear.
      this.ids.reserveDefault(defaultId, line);
      return [{ problem: { file: this.file, line, column: '', reason: fieldCountReason(record.length, header.columns.length, headerLine, this.delimiter) } }];
    }
    const problems: RowRead[] = [];
    const report: Report = (column, reason) => problems.push({ problem: { file: this.file, line, column, reason } });

    const id = this.checkId(cellOf(record, header, 'id'), defaultId, line, report);
    const prompt = checkPrompt(record, header, report);
    const model = this.checkModel(cellOf(record, header, 'model'), line, report);
    const options = this.checkOptions(record, header, model, report);
    const refs = splitList(cellOf(record, header, 'reference_images'));
    // A photo named by URL stays a URL: each worker fetches it into its own cache.
    const referenceImages = refs.map((ref) => (isPhotoUrl(ref) ? ref : resolve(this.folder, ref)));
    if (refs.length > 0 && model.ok) {
      const reason = referenceCountReason(refs.length, model.id, model.rules.references);
      if (reason) report('reference_images', reason);
    }

    // The rest of the checks, and the row; after the reference images' files when there are any.
    const finish = (): RowRead[] => {
      const metadata = readMetadata(record, header, report);
      if (problems.length > 0) return problems;
      return [{ row: buildRow(id, line, prompt, model.id, options, referenceImages, cellOf(record, header, 'tags'), metadata) }];
    };
    // A model that takes none was told of above: its files are not worth a look.
    if (refs.length === 0 || (model.ok && model.rules.references.max === 0)) return finish();
    return this.checkReferenceFiles(refs, referenceImages, model, report).then(finish);
  }

  /** The row's id (its own, else its default one), claimed for it unless it cannot have it. */
  private checkId(givenId: string, defaultId: string, line: number, report: Report): string {
    const generated = givenId === '';
    const id = generated ? defaultId : givenId;
    const reason = this.ids.claim(id, generated, line);
    if (reason) report('id', reason);
    return id;
  }

  /** The row's model: a model id, priced when the batch has a budget, and known to this version when it must be. */
  private checkModel(modelCell: string, line: number, report: Report): RowModel {
    const model = modelCell === '' ? this.options.defaults.model.trim() : modelCell;
    const fromDefault = modelCell === '' ? ' (the default)' : '';
    const ok = MODEL_ID.test(model);
    if (!ok) report('model', `"${model}"${fromDefault} is not a model id (like ${DEFAULT_MODEL})`);
    const prices = this.options.budgetPrices;
    if (ok && prices && !prices.priceOf(model, new Date().toISOString())) {
      report('model', `${model}${fromDefault} has no price, so a budget cannot be kept for it; give its price in a TOKENHOT_PRICES file`);
    }
    const rules = this.rulesOf(model);
    // The default model (a flag) is checked once by the command, not on every row that takes it.
    if (ok && !rules.known && modelCell !== '') this.checkUnknownModel(model, line, report);
    return { id: model, ok, rules };
  }

  /** A model id this version does not know: refused (`--strict`), told of once, or let through (see CsvReading). */
  private checkUnknownModel(model: string, line: number, report: Report): void {
    const unknownModel = this.options.unknownModel;
    if (!unknownModel) return;
    if (unknownModel === 'refuse') report('model', `${unknownModelReason(model)}; --strict refuses it`);
    else if (!this.toldUnknown.has(model) && this.toldUnknown.size < 100) {
      this.toldUnknown.add(model);
      unknownModel(model, { file: this.file, line });
    }
  }

  private rulesOf(model: string): ModelRules {
    let entry = this.models.get(model);
    if (!entry) {
      entry = rulesOf(model);
      if (this.models.size < 64) this.models.set(model, entry);
    }
    return entry;
  }

  /**
   * aspect_ratio, image_size, size, quality: the model's provider says which values it takes, and
   * which defaults do not apply to it. Sizes are written as people write them (`2k`) and kept as
   * the API requires them (`2K`). A model that is not an id has no options worth a word.
   */
  private checkOptions(record: string[], header: Header, model: RowModel, report: Report): CheckedOptions {
    const ratioCell = cellOf(record, header, 'aspect_ratio');
    const defaultRatio = this.options.defaults.aspectRatio?.trim() || undefined;
    const sizeCell = cellOf(record, header, 'image_size');
    const imageSize: OptionValue | undefined =
      sizeCell !== '' ? { value: normalizeImageSize(sizeCell), fromDefault: false, written: sizeCell } : this.defaultSize === undefined ? undefined : { value: this.defaultSize, fromDefault: true };
    const chosen = model.rules.check({
      aspectRatio: givenOption(ratioCell) ?? (defaultRatio !== undefined ? { value: defaultRatio, fromDefault: true } : undefined),
      imageSize,
      size: givenOption(cellOf(record, header, 'size')),
      quality: givenOption(cellOf(record, header, 'quality')),
    });
    if (model.ok) for (const { column, reason } of chosen.problems) report(column, reason);
    return chosen;
  }

  /** The files of the row's reference images: each can be sent to its model. */
  private async checkReferenceFiles(refs: string[], referenceImages: string[], model: RowModel, report: Report): Promise<void> {
    for (const reason of await this.referenceFiles.problems(refs, referenceImages, model.id, model.rules)) report('reference_images', reason);
  }
}

/** A record whose field count is not the header's; a likely reason when it has more. */
function fieldCountReason(fields: number, headerFields: number, headerLine: number, delimiter: string): string {
  const more = fields > headerFields;
  return (
    `has ${fields} fields but the header (line ${headerLine}) has ${headerFields}` +
    (more ? `; a cell holding the delimiter (${delimiterName(delimiter)} file) must be in double quotes, the quote its first character${delimiter === ';' ? ', so are `tags` and `reference_images` lists ("red;blue")' : ''}` : '')
  );
}

/** The prompt, kept exactly as written; only a blank one is refused. */
function checkPrompt(record: string[], header: Header, report: Report): string {
  const prompt = record[header.known.get('prompt') ?? -1] ?? '';
  if (prompt.trim() === '') report('prompt', 'is empty; every row needs a prompt');
  return prompt;
}

/** An option's cell as the model's checks take it; undefined when empty. */
function givenOption(cell: string): OptionValue | undefined {
  return cell === '' ? undefined : { value: cell, fromDefault: false };
}

/**
 * Unknown columns are metadata, kept as written. An unnamed column (a trailing comma in the
 * header) is ignored while empty, but a value in it would be lost silently, so it is reported.
 */
function readMetadata(record: string[], header: Header, report: Report): [string, string][] {
  const metadata: [string, string][] = [];
  header.columns.forEach((column, index) => {
    if (column.known) return;
    const value = record[index] ?? '';
    if (column.name === '') {
      if (value.trim() !== '') report(`column ${index + 1}`, 'has a value but no name in the header');
      return;
    }
    metadata.push([column.name, value]);
  });
  return metadata;
}

function buildRow(id: string, line: number, prompt: string, model: string, chosen: CheckedOptions, referenceImages: string[], tagsCell: string, metadata: [string, string][]): Row {
  return {
    id,
    line,
    prompt,
    model,
    ...(chosen.aspectRatio !== undefined ? { aspectRatio: chosen.aspectRatio } : {}),
    ...(chosen.imageSize !== undefined ? { imageSize: chosen.imageSize } : {}),
    ...(chosen.size !== undefined ? { size: chosen.size } : {}),
    ...(chosen.quality !== undefined ? { quality: chosen.quality } : {}),
    referenceImages,
    tags: [...new Set(splitList(tagsCell))],
    // fromEntries defines own properties, so a column named "__proto__" stays plain data.
    metadata: Object.fromEntries(metadata),
  };
}

/** A `;`-separated list cell (tags, reference_images), its items trimmed, empty ones dropped. */
function splitList(cell: string): string[] {
  if (cell === '') return [];
  return cell
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}
