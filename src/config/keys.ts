/**
 * The schema as a flat list of keys. Docs, "did you mean" suggestions, the
 * empty-file message and path resolution all read this list, so none of them
 * keeps its own copy of the key names.
 */
import { z } from 'zod';
import { configSchema } from './schema.js';

/** One configuration key. */
export interface ConfigKey {
  /** Dotted path; list items are written `[]`, e.g. `authentication.jwt[].issuer.url`. */
  readonly path: string;
  /** The path of the mapping that holds the key ("" at the top). */
  readonly parent: string;
  /** The key's own name. */
  readonly name: string;
  /** What to write, in words: "duration", "file path", "one of: combined, json", "mapping"… */
  readonly type: string;
  /** True when the key must be written whenever its parent is. */
  readonly required: boolean;
  /** True when the key has a default, held in `default`. */
  readonly hasDefault: boolean;
  readonly default?: unknown;
  readonly description: string;
}

/** What lies under optional/default/pipe wrappers, and what the wrappers said. */
interface Unwrapped {
  readonly schema: z.ZodType;
  readonly required: boolean;
  readonly hasDefault: boolean;
  readonly default?: unknown;
  readonly description: string;
  readonly typeName?: string;
}

function unwrap(outer: z.ZodType): Unwrapped {
  let schema = outer;
  let required = true;
  let hasDefault = false;
  let defaultValue: unknown;
  let description: string | undefined;
  let typeName: string | undefined;
  for (;;) {
    const meta = z.globalRegistry.get(schema);
    description ??= meta?.description;
    typeName ??= typeof meta?.['typeName'] === 'string' ? meta['typeName'] : undefined;
    if (schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault) {
      if (!hasDefault) defaultValue = schema.def.defaultValue;
      hasDefault = true;
      required = false;
      schema = schema.def.innerType as z.ZodType;
    } else if (schema instanceof z.ZodOptional) {
      required = false;
      schema = schema.def.innerType as z.ZodType;
    } else if (schema instanceof z.ZodPipe) {
      // Users write the input side (a duration string, not its milliseconds).
      schema = schema.def.in as z.ZodType;
    } else {
      return { schema, required, hasDefault, default: defaultValue, description: description ?? '', ...(typeName ? { typeName } : {}) };
    }
  }
}

function typeOf(u: Unwrapped): string {
  const s = u.schema;
  if (u.typeName) return u.typeName;
  if (s instanceof z.ZodObject) return 'mapping';
  if (s instanceof z.ZodArray) {
    const element = unwrap(s.element as z.ZodType);
    return element.schema instanceof z.ZodObject ? 'list of mappings' : `list of ${typeOf(element)}s`;
  }
  if (s instanceof z.ZodEnum) return `one of: ${s.options.join(', ')}`;
  if (s instanceof z.ZodLiteral) return [...s.values].map(String).join(', ');
  if (s instanceof z.ZodBoolean) return 'boolean';
  if (s instanceof z.ZodNumber) {
    // int() implies ±MAX_SAFE_INTEGER bounds: not worth printing.
    const range = [
      s.minValue !== null && s.minValue > Number.MIN_SAFE_INTEGER ? `≥ ${s.minValue}` : '',
      s.maxValue !== null && s.maxValue < Number.MAX_SAFE_INTEGER ? `≤ ${s.maxValue}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    return `${s.isInt ? 'integer' : 'number'}${range ? ` (${range})` : ''}`;
  }
  if (s instanceof z.ZodString) return s.format === 'url' ? 'URL' : 'string';
  return 'value';
}

function walk(shape: Record<string, z.ZodType>, parent: string, out: ConfigKey[]): void {
  for (const [name, field] of Object.entries(shape)) {
    const path = parent ? `${parent}.${name}` : name;
    const u = unwrap(field);
    out.push({
      path,
      parent,
      name,
      type: typeOf(u),
      required: u.required,
      hasDefault: u.hasDefault,
      ...(u.hasDefault ? { default: u.default } : {}),
      description: u.description,
    });
    if (u.schema instanceof z.ZodObject) walk(u.schema.shape, path, out);
    if (u.schema instanceof z.ZodArray) {
      const element = unwrap(u.schema.element as z.ZodType).schema;
      if (element instanceof z.ZodObject) walk(element.shape, `${path}[]`, out);
    }
  }
}

let cached: readonly ConfigKey[] | undefined;

/** Every key of the configuration schema, in schema order. */
export function configKeys(): readonly ConfigKey[] {
  if (!cached) {
    const out: ConfigKey[] = [];
    walk(configSchema.shape, '', out);
    cached = Object.freeze(out);
  }
  return cached;
}

/** The keys a minimal file must write: required all the way down from the top. */
export function requiredLeafKeys(): string[] {
  const keys = configKeys();
  const required = new Set(keys.filter((k) => k.required).map((k) => k.path));
  return keys
    .filter((k) => k.type !== 'mapping' && !k.path.includes('[]') && [...ancestors(k.path), k.path].every((p) => required.has(p)))
    .map((k) => k.path);
}

function ancestors(path: string): string[] {
  const parts = path.split('.');
  return parts.slice(1).map((_, i) => parts.slice(0, i + 1).join('.'));
}

/** Turns a concrete path (`["authentication", "jwt", 0, "issuer"]`) into its key pattern (`authentication.jwt[].issuer`). */
export function patternOf(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += '[]';
    else out += out ? `.${String(segment)}` : String(segment);
  }
  return out;
}
