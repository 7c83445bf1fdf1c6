/**
 * A feed and a job's mapping → the products to make images of: the feed read and grouped by its
 * format, every template and filter checked against its columns before any product is looked
 * at, then the products kept (status, `where:`) and named (the `id` template, made file-safe).
 */
import { UsageError } from '../../core/errors.js';
import { missingColumns, fieldLookup, parseTemplate, renderTemplate, TemplateError, type Template } from '../template.js';
import { readFeedFile } from './feed-file.js';
import { merchantProducts } from './merchant.js';
import { plainProducts } from './plain.js';
import { fileSafeId } from './product-id.js';
import { shopifyProducts } from './shopify.js';
import type { FeedFormat, FeedProblem, FeedProduct, FeedProducts, FeedTable, Product } from './types.js';
import { matchesWhere, whereMissingColumns, type Where } from './where.js';

/** The feed part of a job definition, as given (templates unparsed, paths absolute). */
export interface FeedMapping {
  /** The definition file, named by every error about the mapping. */
  definitionFile: string;
  /** Absolute path of the feed. */
  feed: string;
  format: FeedFormat;
  /** The feed's delimiter; read from its header line when not given. */
  delimiter?: string;
  /** Template of the product id; Shopify's default is `{{Handle}}`, Merchant's `{{id}}`, plain feeds must give one. */
  id?: string;
  where?: Where;
  /** Shopify statuses taken besides `active` (`draft`, `archived`). */
  includeStatus?: string[];
}

/** The mapping or the feed does not fit together: nothing may be sent. Each line names the definition file. */
export class FeedMappingError extends UsageError {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'FeedMappingError';
  }
}

export interface ProductsRead {
  table: Omit<FeedTable, 'records'>;
  /** What templates may name: the header's columns and the names made from the data (Shopify's options). */
  fields: string[];
  products: Product[];
  /** Records and products left out, each named by its feed line. */
  problems: FeedProblem[];
  /** Products not taken, by reason: a status not asked for, a `where:` condition not met. */
  excluded: { status: number; where: number };
  /** Every template parsed, by name (`id`, and those given to readProducts). */
  templates: Map<string, Template>;
}

const DEFAULT_ID: Record<FeedFormat, string | undefined> = { shopify: '{{Handle}}', merchant: '{{id}}', plain: undefined };

/** A template of the job, named as the definition file names it (`shots[2].prompt`). */
export interface NamedTemplate {
  name: string;
  source: string;
}

/**
 * Reads the feed and returns its products. `templates` are the job's other templates (prompts):
 * each is checked against the feed's columns together with the `id` template and the filter,
 * and a column one of them names but the feed lacks is a FeedMappingError before anything else.
 * Throws CsvFileError for a feed that cannot be read, FeedMappingError for duplicate ids.
 */
export async function readProducts(mapping: FeedMapping, templates: readonly NamedTemplate[] = []): Promise<ProductsRead> {
  const idSource = mapping.id ?? DEFAULT_ID[mapping.format];
  if (idSource === undefined) throw new FeedMappingError([`${mapping.definitionFile}: id: a plain feed needs an id template naming its products, like "{{sku}}"`]);
  const parsed = parseTemplates(mapping.definitionFile, [{ name: 'id', source: idSource }, ...templates]);
  const { table, problems: recordProblems } = await readFeedFile(mapping.feed, mapping.delimiter === undefined ? {} : { delimiter: mapping.delimiter });
  const grouped = productsOfFormat(mapping.format, table);
  const fields = [...table.columns, ...grouped.derivedFields];
  checkColumns(mapping, table, grouped.derivedFields, [...parsed.values()]);

  const { records: _records, ...header } = table;
  const problems = [...recordProblems, ...grouped.problems];
  const excluded = { status: 0, where: 0 };
  const kept = grouped.products.filter((product) => {
    if (!statusTaken(product, mapping.includeStatus)) excluded.status += 1;
    else if (mapping.where && !matchesWhere(mapping.where, fieldLookup(product.fields))) excluded.where += 1;
    else return true;
    return false;
  });
  const products = nameProducts(mapping, table.file, parsed.get('id')!, kept, problems);
  return { table: header, fields, products, problems, excluded, templates: parsed };
}

function productsOfFormat(format: FeedFormat, table: FeedTable): FeedProducts {
  switch (format) {
    case 'shopify':
      return shopifyProducts(table);
    case 'merchant':
      return merchantProducts(table);
    case 'plain':
      return plainProducts(table);
  }
}

/** Every template parsed, or one FeedMappingError with every syntax problem. */
function parseTemplates(definitionFile: string, templates: readonly NamedTemplate[]): Map<string, Template> {
  const parsed = new Map<string, Template>();
  const problems: string[] = [];
  for (const { name, source } of templates) {
    try {
      parsed.set(name, parseTemplate(name, source));
    } catch (error) {
      if (!(error instanceof TemplateError)) throw error;
      problems.push(`${definitionFile}: ${error.message}`);
    }
  }
  if (problems.length > 0) throw new FeedMappingError(problems);
  return parsed;
}

/** Every column a template or the filter names must be in the feed: one error listing them all. */
function checkColumns(mapping: FeedMapping, table: FeedTable, derived: readonly string[], templates: readonly Template[]): void {
  const available = [...table.columns, ...derived];
  const theFeedHas = `the feed ${table.file} lacks; its columns: ${table.columns.join(', ')}${derived.length > 0 ? `; and its products' options: ${derived.join(', ')}` : ''}`;
  const problems: string[] = [];
  for (const template of templates) {
    for (const column of missingColumns(template, available)) {
      problems.push(`${mapping.definitionFile}: ${template.name}: "${template.source}" names the column "${column}", which ${theFeedHas}`);
    }
  }
  for (const column of mapping.where ? whereMissingColumns(mapping.where, available) : []) {
    problems.push(`${mapping.definitionFile}: where: names the column "${column}", which ${theFeedHas}`);
  }
  if (problems.length > 0) throw new FeedMappingError(problems);
}

/** Shopify's drafts and archived products are left alone unless asked for; feeds without a status are all taken. */
function statusTaken(product: FeedProduct, includeStatus: readonly string[] = []): boolean {
  if (product.status === undefined || product.status === 'active') return true;
  return includeStatus.some((status) => status.trim().toLowerCase() === product.status);
}

/**
 * Each product's file-safe id from the id template. An empty id is a problem (the product left
 * out); two products of one id, compared regardless of case as file names on macOS and Windows
 * are, are a FeedMappingError naming both lines.
 */
function nameProducts(mapping: FeedMapping, file: string, idTemplate: Template, products: readonly FeedProduct[], problems: FeedProblem[]): Product[] {
  const named: Product[] = [];
  const owners = new Map<string, { line: number; raw: string }>();
  const duplicates: string[] = [];
  for (const product of products) {
    const raw = renderTemplate(idTemplate, fieldLookup(product.fields)).trim();
    const id = fileSafeId(raw);
    if (id === '') {
      const why = raw === '' ? 'comes out empty' : `"${raw}" has no letter or digit to name files with`;
      problems.push({ file, line: product.line, column: '', reason: `the id template "${idTemplate.source}" ${why} for this product; left out` });
      continue;
    }
    const owner = owners.get(id.toLowerCase());
    if (owner) {
      const made = raw !== id || owner.raw !== id ? ` (from "${owner.raw}" and "${raw}")` : '';
      duplicates.push(`${mapping.definitionFile}: id: lines ${owner.line} and ${product.line} of ${file} both have the product id "${id}"${made}; the id template "${idTemplate.source}" must name each product once`);
      continue;
    }
    owners.set(id.toLowerCase(), { line: product.line, raw });
    named.push({ id, line: product.line, fields: product.fields, photos: product.photos, tags: product.tags });
  }
  if (duplicates.length > 0) throw new FeedMappingError(duplicates);
  return named;
}
