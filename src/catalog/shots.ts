/**
 * Shot lists: every product of a feed gets every shot (a hero on white, a lifestyle scene, a
 * wide banner), each one Row named `<product id>--<shot name>`, flat in the batch folder. A
 * shot's options are checked by the model's own rules, as a prompt CSV's cells are, and all of
 * a job's templates against the feed's columns, before any row is made.
 */
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import type { Row } from '../core/types.js';
import type { PriceTable } from '../cost/pricing.js';
import { DEFAULT_MODEL, normalizeImageSize, rulesOf, unknownModelReason, type ModelRules } from '../providers/models.js';
import type { OptionValue } from '../providers/row-options.js';
import type { RowDefaults } from '../rows/csv.js';
import { FeedMappingError, readProducts, type NamedTemplate, type ProductsRead } from '../rows/feeds/products.js';
import { FEED_FORMATS, type FeedFormat, type FeedProblem, type Product } from '../rows/feeds/types.js';
import { whereSchema, type Where } from '../rows/feeds/where.js';
import { fieldLookup, renderTemplate, type Template } from '../rows/template.js';

export type ReferenceMode = 'all' | 'first' | 'none';

/** Words joined by single "-" or "_": no "--" (it joins product and shot in a row id), no ".". */
const SHOT_NAME = /^[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*$/;
const MAX_SHOT_NAME = 32;

const shotSchema = z
  .object({
    name: z.string().max(MAX_SHOT_NAME).regex(SHOT_NAME, `letters and digits, words joined by one "-" or "_", at most ${MAX_SHOT_NAME}`),
    prompt: z.string().min(1).optional(),
    model: z.string().min(1).optional(),
    aspect_ratio: z.string().min(1).optional(),
    image_size: z.string().min(1).optional(),
    quality: z.string().min(1).optional(),
    size: z.string().min(1).optional(),
    references: z.enum(['all', 'first', 'none']).default('first'),
  })
  .strict();

/**
 * The keys a job definition takes for a feed, as a zod shape for definition.ts's schema:
 * `feed`, `format`, `delimiter`, `id`, `prompt`, `where`, `include_status`, `shots`.
 */
export const feedJobFields = {
  feed: z.string().min(1),
  format: z.enum(FEED_FORMATS as [FeedFormat, ...FeedFormat[]]),
  delimiter: z.string().min(1).optional(),
  id: z.string().min(1).optional(),
  prompt: z.string().min(1).optional(),
  where: whereSchema.optional(),
  include_status: z.array(z.string().min(1)).optional(),
  shots: z.array(shotSchema).min(1).optional(),
};

export const feedJobSchema = z.object(feedJobFields).strict();
export type FeedJobInput = z.input<typeof feedJobSchema>;

export interface Shot {
  name: string;
  /** Template; the job's `prompt` when the shot gives none. */
  prompt?: string;
  model?: string;
  aspectRatio?: string;
  imageSize?: string;
  quality?: string;
  size?: string;
  /** Which of the product's photos are sent as reference images. */
  references: ReferenceMode;
}

/** A feed job as the row makers take it: paths absolute, names in the code's spelling. */
export interface FeedJob {
  definitionFile: string;
  /** Absolute path of the feed. */
  feed: string;
  format: FeedFormat;
  delimiter?: string;
  id?: string;
  /** Template of the shots that give none; a job without shots has one row per product, named by its id. */
  prompt?: string;
  where?: Where;
  includeStatus?: string[];
  /** None: one row per product, id = the product id, with `prompt`. */
  shots?: Shot[];
}

/** A checked definition's feed keys → a FeedJob, the feed's path taken relative to the definition file. */
export function feedJobOf(definitionFile: string, input: z.output<typeof feedJobSchema>): FeedJob {
  const optional = <K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> => (value === undefined ? {} : ({ [key]: value } as Record<K, V>));
  return {
    definitionFile,
    feed: resolve(dirname(definitionFile), input.feed),
    format: input.format,
    // `\t` as YAML writes a tab, or the word, as for `--delimiter`.
    ...optional('delimiter', input.delimiter === 'tab' ? '\t' : input.delimiter),
    ...optional('id', input.id),
    ...optional('prompt', input.prompt),
    ...optional('where', input.where),
    ...optional('includeStatus', input.include_status),
    ...optional(
      'shots',
      input.shots?.map((shot) => ({
        name: shot.name,
        references: shot.references,
        ...optional('prompt', shot.prompt),
        ...optional('model', shot.model),
        ...optional('aspectRatio', shot.aspect_ratio),
        ...optional('imageSize', shot.image_size),
        ...optional('quality', shot.quality),
        ...optional('size', shot.size),
      })),
    ),
  };
}

export interface ShotRowsOptions {
  /** The job's defaults (model, aspect ratio, image size) for shots that give none. */
  defaults: RowDefaults;
  /** A shot's model this version does not know is an error (`--strict`); else it is listed in `unknownModels`. */
  strictModels?: boolean;
  /** Given when the batch has a budget: a shot whose model has no price here is an error. */
  budgetPrices?: PriceTable;
}

export interface ShotRows extends Omit<ProductsRead, 'templates'> {
  /** Every product's every shot, product by product in feed order. */
  rows: Row[];
  /** Kept, but not as asked (more photos than the model takes), each named by its feed line. */
  warnings: FeedProblem[];
  /** Models of shots that this version does not know (sent with the common limits). */
  unknownModels: string[];
}

/** A shot with its options checked for its model: what each of its rows carries. */
interface CheckedShot {
  shot: Shot;
  /** `shots[2].prompt`, or `prompt` for the job's own. */
  templateName: string;
  model: string;
  rules: ModelRules;
  options: Pick<Row, 'aspectRatio' | 'imageSize' | 'size' | 'quality'>;
}

/**
 * The rows of a feed job. Throws FeedMappingError (naming the definition file) for a shot the
 * model cannot make, a template or filter naming a column the feed lacks, or two products of one
 * id; CsvFileError for a feed that cannot be read. A product whose id or prompt comes out empty
 * is left out and named in `problems`.
 */
export async function readShotRows(job: FeedJob, options: ShotRowsOptions): Promise<ShotRows> {
  const { checked, unknownModels } = checkShots(job, options);
  const templates: NamedTemplate[] = uniqueTemplates(job, checked);
  const { templates: parsed, ...read } = await readProducts(
    {
      definitionFile: job.definitionFile,
      feed: job.feed,
      format: job.format,
      ...(job.delimiter !== undefined ? { delimiter: job.delimiter } : {}),
      ...(job.id !== undefined ? { id: job.id } : {}),
      ...(job.where !== undefined ? { where: job.where } : {}),
      ...(job.includeStatus !== undefined ? { includeStatus: job.includeStatus } : {}),
    },
    templates,
  );
  if (!job.shots) checkSecondImageNames(job, read.products, read.table.file);
  const warnings: FeedProblem[] = [];
  const rows: Row[] = [];
  for (const product of read.products) {
    const prompts = renderPrompts(product, checked, parsed, read.table.file, read.problems);
    if (!prompts) continue;
    checked.forEach((shot, index) => rows.push(shotRow(product, shot, prompts[index]!, Boolean(job.shots), read.table.file, warnings)));
  }
  return { ...read, rows, warnings, unknownModels };
}

/** The job's shots, or the one implicit shot of a job without a list. */
function shotsOf(job: FeedJob): { shot: Shot; field: string }[] {
  if (job.shots) return job.shots.map((shot, index) => ({ shot, field: `shots[${index}]` }));
  return [{ shot: { name: '', references: 'first' }, field: '' }];
}

/** Each shot's model and options checked by the model's rules; one FeedMappingError listing every problem. */
/** The first problem of the job's shots with their models (options a model cannot take, a missing prompt), without reading the feed. */
export function shotOptionProblem(job: FeedJob, defaultModel = DEFAULT_MODEL): string | undefined {
  try {
    checkShots(job, { defaults: { model: defaultModel } });
    return undefined;
  } catch (error) {
    if (error instanceof FeedMappingError) return error.message.split('\n')[0];
    throw error;
  }
}

function checkShots(job: FeedJob, options: ShotRowsOptions): { checked: CheckedShot[]; unknownModels: string[] } {
  const problems: string[] = [];
  const unknownModels = new Set<string>();
  const at = (field: string, key: string): string => `${job.definitionFile}: ${field === '' ? key : `${field}.${key}`}`;
  problems.push(...shotNameProblems(job));
  const checked: CheckedShot[] = [];
  for (const { shot, field } of shotsOf(job)) {
    const prompt = shot.prompt ?? job.prompt;
    if (prompt === undefined) problems.push(`${at(field, 'prompt')}: no prompt template; give ${field === '' ? 'the job a prompt (or a list of shots)' : 'the shot one, or the job a prompt for every shot'}`);
    const model = (shot.model ?? options.defaults.model).trim();
    const rules = rulesOf(model);
    if (!rules.known) {
      if (options.strictModels) problems.push(`${at(field, 'model')}: ${unknownModelReason(model)}`);
      else unknownModels.add(model);
    }
    if (options.budgetPrices && !options.budgetPrices.priceOf(model, new Date().toISOString())) {
      problems.push(`${at(field, 'model')}: ${model} has no price, so a budget cannot be kept for it; give its price in a TOKENHOT_PRICES file`);
    }
    const chosen = rules.check(optionCells(shot, options.defaults));
    for (const { column, reason } of chosen.problems) problems.push(`${at(field, column)}: ${reason}`);
    if (shot.references !== 'none' && rules.references.max === 0) {
      problems.push(`${at(field, 'references')}: ${model} takes no reference images; give references: none`);
    }
    const { problems: _checked, ...chosenOptions } = chosen;
    checked.push({ shot, templateName: shot.prompt !== undefined ? `${field}.prompt` : 'prompt', model, rules, options: chosenOptions });
  }
  if (problems.length > 0) throw new FeedMappingError(problems);
  return { checked, unknownModels: [...unknownModels] };
}

/** A shot's options as the model rules take them: its own, else the job's defaults (which a model may not take). */
function optionCells(shot: Shot, defaults: RowDefaults): Parameters<ModelRules['check']>[0] {
  const own = (value: string | undefined, written?: string): OptionValue | undefined =>
    value === undefined ? undefined : { value, fromDefault: false, ...(written !== undefined && written !== value ? { written } : {}) };
  const byDefault = (value: string | undefined): OptionValue | undefined => (value === undefined || value.trim() === '' ? undefined : { value: value.trim(), fromDefault: true });
  const imageSize = shot.imageSize === undefined ? undefined : normalizeImageSize(shot.imageSize);
  const cells = {
    aspectRatio: own(shot.aspectRatio?.trim()) ?? byDefault(defaults.aspectRatio),
    imageSize: own(imageSize, shot.imageSize) ?? byDefault(defaults.imageSize === undefined ? undefined : normalizeImageSize(defaults.imageSize)),
    size: own(shot.size?.trim()),
    quality: own(shot.quality?.trim()),
  };
  return Object.fromEntries(Object.entries(cells).filter(([, value]) => value !== undefined));
}

/**
 * Shot names unique regardless of case, and none the name of another's second image: the rows
 * `p--hero` and `p--hero-2` would both write `p--hero-2.png`.
 */
function shotNameProblems(job: FeedJob): string[] {
  const problems: string[] = [];
  const seen = new Map<string, number>();
  (job.shots ?? []).forEach((shot, index) => {
    const earlier = seen.get(shot.name.toLowerCase());
    if (earlier !== undefined) problems.push(`${job.definitionFile}: shots[${index}].name: "${shot.name}" is already the name of shots[${earlier}]`);
    else seen.set(shot.name.toLowerCase(), index);
  });
  (job.shots ?? []).forEach((shot, index) => {
    const suffixed = /^(.+)-(\d+)$/.exec(shot.name);
    const base = suffixed && Number(suffixed[2]) >= 2 ? seen.get(suffixed[1]!.toLowerCase()) : undefined;
    if (base !== undefined) {
      problems.push(`${job.definitionFile}: shots[${index}].name: "${shot.name}" is the file name of the second, third ... image of shots[${base}] ("${job.shots![base]!.name}"); choose another name`);
    }
  });
  return problems;
}

/** The prompt templates to check and render, each once (shots without their own share the job's). */
function uniqueTemplates(job: FeedJob, checked: readonly CheckedShot[]): NamedTemplate[] {
  const byName = new Map<string, NamedTemplate>();
  for (const { shot, templateName } of checked) {
    const source = shot.prompt ?? job.prompt;
    if (source !== undefined && !byName.has(templateName)) byName.set(templateName, { name: templateName, source });
  }
  return [...byName.values()];
}

/**
 * Without shots a row is named by its product id alone, so two products must not be `mug` and
 * `mug-2` (the file of the first's second image).
 */
function checkSecondImageNames(job: FeedJob, products: readonly Product[], file: string): void {
  const lines = new Map(products.map((product) => [product.id.toLowerCase(), product.line]));
  const problems: string[] = [];
  for (const product of products) {
    const suffixed = /^(.+)-(\d+)$/.exec(product.id);
    const base = suffixed && Number(suffixed[2]) >= 2 ? lines.get(suffixed[1]!.toLowerCase()) : undefined;
    if (base !== undefined) {
      problems.push(`${job.definitionFile}: id: the product id "${product.id}" (line ${product.line} of ${file}) is the file name of the second image of line ${base}'s product; give the job shots, or an id template that keeps them apart`);
    }
  }
  if (problems.length > 0) throw new FeedMappingError(problems);
}

/** The product's prompt for each shot, or undefined (with a problem) when one comes out empty. */
function renderPrompts(product: Product, checked: readonly CheckedShot[], templates: Map<string, Template>, file: string, problems: FeedProblem[]): string[] | undefined {
  const valueOf = fieldLookup(product.fields);
  const prompts = checked.map((shot) => renderTemplate(templates.get(shot.templateName)!, valueOf));
  const empty = prompts.findIndex((prompt) => prompt.trim() === '');
  if (empty === -1) return prompts;
  const shot = checked[empty]!;
  const which = shot.shot.name === '' ? '' : ` of shot "${shot.shot.name}"`;
  problems.push({ file, line: product.line, column: '', reason: `product "${product.id}": the prompt${which} (${shot.templateName}) comes out empty; the product is left out` });
  return undefined;
}

/** One product's row for one shot. */
function shotRow(product: Product, checked: CheckedShot, prompt: string, named: boolean, file: string, warnings: FeedProblem[]): Row {
  const { shot, model, rules, options } = checked;
  let references = shot.references === 'all' ? product.photos : shot.references === 'first' ? product.photos.slice(0, 1) : [];
  if (references.length > rules.references.max) {
    warnings.push({
      file,
      line: product.line,
      column: '',
      reason: `product "${product.id}" has ${references.length} photos, but ${model} takes at most ${rules.references.max}: shot "${shot.name}" sends the first ${rules.references.max}`,
    });
    references = references.slice(0, rules.references.max);
  }
  return {
    id: named ? `${product.id}--${shot.name}` : product.id,
    line: product.line,
    prompt,
    model,
    ...options,
    referenceImages: references,
    tags: product.tags,
    metadata: {
      product: product.id,
      ...(named ? { shot: shot.name } : {}),
      feed_line: String(product.line),
      // URLs hold no spaces (they are written %20), so a space keeps them apart.
      photos: product.photos.join(' '),
    },
  };
}
