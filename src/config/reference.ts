/**
 * docs/configuration.md's key tables, generated from the schema so the docs
 * cannot drift from what the loader accepts; test/config/reference.test.ts
 * fails when the file is stale, and rewrites it with UPDATE_DOCS=1.
 */
import { stringify } from 'yaml';
import { configKeys, type ConfigKey } from './keys.js';

/** The markers around the generated part of docs/configuration.md; the prose around them is hand-written. */
export const REFERENCE_START = '<!-- reference:start — generated from src/config/schema.ts; refresh with: UPDATE_DOCS=1 npx tap test/config/reference.test.ts -->';
export const REFERENCE_END = '<!-- reference:end -->';

const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

/** A default as the user would write it in YAML. */
function yamlValue(value: unknown): string {
  return stringify(value, { collectionStyle: 'flow', flowCollectionPadding: false, lineWidth: 0 }).trim();
}

function defaultCell(key: ConfigKey): string {
  if (key.required) return '**required**';
  // A mapping's default ({}) only means "may be left out": its keys' defaults say the rest.
  if (!key.hasDefault || key.type === 'mapping') return '—';
  return `\`${yamlValue(key.default)}\``;
}

/** One section per top-level key, each a table of every key under it. */
export function renderReference(): string {
  const keys = configKeys();
  const parts: string[] = [];
  for (const section of keys.filter((k) => k.parent === '')) {
    parts.push(`### \`${section.path}\``, '', `${section.description} ${section.required ? 'Required.' : 'Optional.'}`, '');
    parts.push('| key | type | default | meaning |', '|---|---|---|---|');
    for (const key of keys.filter((k) => k.path.startsWith(`${section.path}.`) || k.path.startsWith(`${section.path}[].`))) {
      parts.push(`| \`${key.path}\` | ${cell(key.type)} | ${cell(defaultCell(key))} | ${cell(key.description)} |`);
    }
    parts.push('');
  }
  return parts.join('\n');
}

/** `markdown` with the text between the markers replaced by a fresh {@link renderReference}. */
export function updateReference(markdown: string): string {
  const start = markdown.indexOf(REFERENCE_START);
  const end = markdown.indexOf(REFERENCE_END);
  if (start < 0 || end < start) throw new Error('docs/configuration.md lacks the reference markers');
  return `${markdown.slice(0, start + REFERENCE_START.length)}\n\n${renderReference()}\n${markdown.slice(end)}`;
}
