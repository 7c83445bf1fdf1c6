/**
 * Shopify's product CSV export → products. The records of one `Handle` are one product: the
 * first holds the product's fields (Title, Vendor, Tags, Status ...), later ones add a variant
 * (`Option1 Value` ...) and/or a photo (`Image Src` at `Image Position`), their other cells empty.
 * A product's option values are gathered under the option's name (`Color: Red, Blue`), so a
 * template can say `{{Color}}`.
 */
import { CsvFileError } from '../csv.js';
import { cellReader, columnNamed, splitCommas } from './columns.js';
import type { FeedProblem, FeedProducts, FeedProduct, FeedRecord, FeedTable } from './types.js';

type Cell = (record: FeedRecord) => string;

/** The columns this reader uses, looked up once. */
interface ShopifyColumns {
  handle: Cell;
  status: Cell;
  tags: Cell;
  imageSrc: Cell;
  imagePosition: Cell;
  /** Options 1 to 3: the name and value columns. */
  options: { name: Cell; value: Cell }[];
}

/** A product being gathered: its records' photos with their positions, its options' values. */
interface Gathering {
  product: FeedProduct;
  photos: { url: string; position: number; order: number }[];
  /** Per option (index 0 to 2): its name, from the first record, and the values seen. */
  options: { name: string; values: Set<string> }[];
}

export function shopifyProducts(table: FeedTable): FeedProducts {
  if (columnNamed(table, 'Handle') === undefined) {
    throw new CsvFileError(
      table.file,
      `has no "Handle" column, so it is not a Shopify product export (found: ${table.columns.join(', ')}); for another feed give format: merchant or plain`,
      table.headerLine,
    );
  }
  const columns = shopifyColumns(table);
  const problems: FeedProblem[] = [];
  const byHandle = new Map<string, Gathering>();
  for (const record of table.records) {
    const handle = columns.handle(record);
    if (handle === '') {
      problems.push({ file: table.file, line: record.line, column: 'Handle', reason: 'is empty, so this record belongs to no product; left out' });
      continue;
    }
    let gathering = byHandle.get(handle);
    if (!gathering) {
      gathering = startProduct(columns, record);
      byHandle.set(handle, gathering);
    }
    addRecord(columns, gathering, record);
  }
  const derived = new Map<string, string>();
  const headerNames = new Set(table.columns.map((column) => column.toLowerCase()));
  const products = [...byHandle.values()].map((gathering) => finishProduct(gathering, headerNames, derived));
  return { products, derivedFields: [...derived.values()], problems };
}

function shopifyColumns(table: FeedTable): ShopifyColumns {
  return {
    handle: cellReader(table, 'Handle'),
    status: cellReader(table, 'Status'),
    tags: cellReader(table, 'Tags'),
    imageSrc: cellReader(table, 'Image Src'),
    imagePosition: cellReader(table, 'Image Position'),
    options: [1, 2, 3].map((n) => ({ name: cellReader(table, `Option${n} Name`), value: cellReader(table, `Option${n} Value`) })),
  };
}

function startProduct(columns: ShopifyColumns, record: FeedRecord): Gathering {
  const status = columns.status(record).toLowerCase();
  const product: FeedProduct = {
    line: record.line,
    fields: { ...record.cells },
    photos: [],
    tags: [...new Set(splitCommas(columns.tags(record)))],
    ...(status !== '' ? { status } : {}),
  };
  return { product, photos: [], options: columns.options.map((option) => ({ name: option.name(record), values: new Set<string>() })) };
}

function addRecord(columns: ShopifyColumns, gathering: Gathering, record: FeedRecord): void {
  columns.options.forEach((option, index) => {
    const value = option.value(record);
    if (value !== '') gathering.options[index]?.values.add(value);
  });
  const url = columns.imageSrc(record);
  if (url === '') return;
  const position = Number.parseInt(columns.imagePosition(record), 10);
  // Photos without a position come after those with one, in the order of the file.
  gathering.photos.push({ url, position: Number.isNaN(position) ? Number.POSITIVE_INFINITY : position, order: gathering.photos.length });
}

/**
 * Photos by position without repeats (the variant rows of a product often name one photo
 * again); option values under the option's name, unless that name is one of the feed's columns
 * (a product without variants has the option `Title` = `Default Title`, which must not hide its Title).
 * `derived` collects the names used, by their lower-cased form.
 */
function finishProduct(gathering: Gathering, headerNames: Set<string>, derived: Map<string, string>): FeedProduct {
  const { product } = gathering;
  const sorted = [...gathering.photos].sort((a, b) => a.position - b.position || a.order - b.order);
  product.photos = [...new Set(sorted.map((photo) => photo.url))];
  for (const { name, values } of gathering.options) {
    const key = name.toLowerCase();
    if (name === '' || headerNames.has(key) || Object.hasOwn(product.fields, name)) continue;
    product.fields[name] = [...values].join(', ');
    if (!derived.has(key)) derived.set(key, name);
  }
  return product;
}
