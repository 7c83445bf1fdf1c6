/**
 * Prompt and id templates over a feed's columns: `{{Column Name}}` is the column's value,
 * `{{Column | default: "natural"}}` the value or, when it is empty, the default. Nothing else:
 * no loops, no other filters, so a template reads the same to a catalog team as to the tool.
 * Whitespace inside the braces is trimmed; values are inserted as they are (trimmed).
 */

/** A template that cannot be read: which one (`shots[2].prompt`) and why. */
export class TemplateError extends Error {
  constructor(
    readonly template: string,
    readonly reason: string,
  ) {
    super(`${template}: ${reason}`);
    this.name = 'TemplateError';
  }
}

/** One `{{...}}` of a template. */
export interface Placeholder {
  column: string;
  /** Given with `| default: "..."`; may be '' (an empty value allowed on purpose). */
  default?: string;
}

export interface Template {
  /** Which template this is, for messages: `id`, `prompt`, `shots[2].prompt`. */
  name: string;
  source: string;
  /** Text and placeholders in order. */
  parts: (string | Placeholder)[];
}

const PLACEHOLDER = /\{\{([\s\S]*?)\}\}/g;
const DEFAULT_FILTER = /^default\s*:\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')$/;

/** Reads a template; throws TemplateError for an unclosed `{{`, an empty name or a filter other than `default`. */
export function parseTemplate(name: string, source: string): Template {
  const parts: Template['parts'] = [];
  let at = 0;
  for (const match of source.matchAll(PLACEHOLDER)) {
    const text = source.slice(at, match.index);
    if (text.includes('{{')) throw new TemplateError(name, `"{{" at ${quoteAround(source, at + text.indexOf('{{'))} is never closed with "}}"`);
    if (text !== '') parts.push(text);
    parts.push(readPlaceholder(name, match[1] ?? '', match[0]));
    at = match.index + match[0].length;
  }
  const rest = source.slice(at);
  if (rest.includes('{{')) throw new TemplateError(name, `"{{" at ${quoteAround(source, at + rest.indexOf('{{'))} is never closed with "}}"`);
  if (rest !== '') parts.push(rest);
  return { name, source, parts };
}

function readPlaceholder(name: string, inside: string, whole: string): Placeholder {
  const bar = inside.indexOf('|');
  const column = (bar === -1 ? inside : inside.slice(0, bar)).trim();
  if (column === '') throw new TemplateError(name, `${whole} names no column`);
  if (bar === -1) return { column };
  const filter = inside.slice(bar + 1).trim();
  const match = DEFAULT_FILTER.exec(filter);
  if (!match) throw new TemplateError(name, `${whole}: the only filter is default, written | default: "value"`);
  const quoted = match[1] ?? match[2] ?? '';
  return { column, default: quoted.replace(/\\(.)/g, '$1') };
}

function quoteAround(source: string, index: number): string {
  return `"${source.slice(index, index + 30)}${source.length > index + 30 ? '...' : ''}"`;
}

/** The columns a template names, each once, in order of first use. */
export function templateColumns(template: Template): string[] {
  return [...new Set(template.parts.flatMap((part) => (typeof part === 'string' ? [] : [part.column])))];
}

/**
 * The template with each placeholder replaced by `valueOf(column)` (trimmed), or its default
 * when that is empty. A column without a value is empty; checking that columns exist is
 * `missingColumns`' job, before any product is rendered.
 */
export function renderTemplate(template: Template, valueOf: (column: string) => string | undefined): string {
  return template.parts
    .map((part) => {
      if (typeof part === 'string') return part;
      const value = (valueOf(part.column) ?? '').trim();
      return value === '' ? (part.default ?? '') : value;
    })
    .join('');
}

/** The columns a template names that are not among `available` (compared regardless of case). */
export function missingColumns(template: Template, available: readonly string[]): string[] {
  const known = new Set(available.map((name) => name.toLowerCase()));
  return templateColumns(template).filter((column) => !known.has(column.toLowerCase()));
}

/** A lookup of a product's fields by column name regardless of case, as templates name them. */
export function fieldLookup(fields: Record<string, string>): (column: string) => string | undefined {
  const byLower = new Map(Object.entries(fields).map(([name, value]) => [name.toLowerCase(), value]));
  return (column) => byLower.get(column.toLowerCase());
}
