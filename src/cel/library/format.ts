/**
 * kube's format library (k8s.io/apiserver pkg/cel/library/format.go):
 * `format.dns1123Label()`… and `format.named(name)` give a named format whose
 * `validate(s)` is optional.none() for a valid string, else optional.of(the
 * messages kube's validators give, word for word). The messages come from two
 * copies of kube's validators that say "characters" (util/validation) and
 * "bytes" (api/validate/content); lengths are counted in bytes.
 */
import { Optional, type Environment } from '@marcbachmann/cel-js';
import { goQuote } from './go-quote.js';
import { parseRequestURI, toBinary } from './go-url.js';
import { FormatNamespace } from './namespaces.js';
import { markNative } from './native-lists.js';
import { KubeValue, registerKubeType } from './opaque.js';

/** cel-go's kubernetes.NamedFormat; equal by name. */
export class NamedFormat extends KubeValue {
  constructor(
    readonly name: string,
    readonly validate: (s: string) => string[],
  ) {
    super();
  }
  override equals(other: KubeValue): boolean {
    return other instanceof NamedFormat && other.name === this.name;
  }
}

/** kube's RegexError, spacing included ("'my-name',  or '123-abc'"). */
function regexError(msg: string, re: string, ...examples: string[]): string {
  if (examples.length === 0) return `${msg} (regex used for validation is '${re}')`;
  return `${msg} (e.g. ${examples.map((e) => `'${e}', `).join(' or ')}regex used for validation is '${re}')`;
}

const LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const SUBDOMAIN = `${LABEL}(\\.${LABEL})*`;
const DNS1035 = '[a-z]([-a-z0-9]*[a-z0-9])?';
const LABEL_KEY = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const LABEL_VALUE = `(${LABEL_KEY})?`;
const whole = (re: string) => new RegExp(`^${re}$`);
const [labelRe, subdomainRe, dns1035Re, labelKeyRe, labelValueRe] = [LABEL, SUBDOMAIN, DNS1035, LABEL_KEY, LABEL_VALUE].map(whole);

const LABEL_MSG = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const SUBDOMAIN_MSG = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_MSG = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const LABEL_KEY_MSG = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MSG = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/** The validators work on Go strings: `s` here is binary (one character per byte), so length is bytes and non-ASCII never matches. */
type Unit = 'characters' | 'bytes';
const maxLen = (n: number, unit: Unit) => `must be no more than ${n} ${unit}`;

function dns1123Label(s: string, unit: Unit): string[] {
  const errs = s.length > 63 ? [maxLen(63, unit)] : [];
  if (!labelRe.test(s)) errs.push(subdomainRe.test(s) ? 'must not contain dots' : regexError(LABEL_MSG, LABEL, 'my-name', '123-abc'));
  return errs;
}

function dns1123Subdomain(s: string, unit: Unit): string[] {
  const errs = s.length > 253 ? [maxLen(253, unit)] : [];
  if (!subdomainRe.test(s)) errs.push(regexError(SUBDOMAIN_MSG, SUBDOMAIN, 'example.com'));
  return errs;
}

function dns1035Label(s: string): string[] {
  const errs = s.length > 63 ? [maxLen(63, 'characters')] : [];
  if (!dns1035Re.test(s)) errs.push(regexError(DNS1035_MSG, DNS1035, 'my-name', 'abc-123'));
  return errs;
}

/** content.IsLabelKey (validation.IsQualifiedName): an optional DNS subdomain prefix and '/', then a name. */
function labelKey(s: string): string[] {
  const parts = s.split('/');
  if (parts.length > 2) {
    return [`a valid label key ${regexError(LABEL_KEY_MSG, LABEL_KEY, 'MyName', 'my.name', '123-abc')} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`];
  }
  const errs: string[] = [];
  const name = parts.length === 2 ? parts[1] : parts[0];
  if (parts.length === 2) {
    if (parts[0] === '') errs.push('prefix part must be non-empty');
    else errs.push(...dns1123Subdomain(parts[0], 'bytes').map((m) => `prefix part ${m}`));
  }
  if (name === '') errs.push('name part must be non-empty');
  else if (name.length > 63) errs.push(`name part ${maxLen(63, 'bytes')}`);
  if (!labelKeyRe.test(name)) errs.push(`name part ${regexError(LABEL_KEY_MSG, LABEL_KEY, 'MyName', 'my.name', '123-abc')}`);
  return errs;
}

function labelValue(s: string): string[] {
  const errs = s.length > 63 ? [maxLen(63, 'bytes')] : [];
  if (!labelValueRe.test(s)) errs.push(regexError(LABEL_VALUE_MSG, LABEL_VALUE, 'MyValue', 'my_value', '12345'));
  return errs;
}

/** kube's maskTrailingDash: a trailing '-' allowed for a generated name's prefix (it replaces the last two bytes with 'a'). */
const maskTrailingDash = (s: string) => (s.length > 1 && s.endsWith('-') ? `${s.slice(0, -2)}a` : s);

function uri(binary: string): string[] {
  try {
    parseRequestURI(binary);
    return [];
  } catch (err) {
    return [`parse ${goQuote(binary)}: ${(err as Error).message}`];
  }
}

const UUID = /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$/;

const isLeap = (y: number) => y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);

/** Go's time.Parse("2006-01-02", s): four-digit year, two-digit month 1-12 and day within the month. */
function isDate(s: string): boolean {
  const m = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/.exec(s);
  if (!m) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12) return false;
  const days = [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  return day >= 1 && day <= days;
}

/** Go's strings.ToLower, rune by rune (simple case mapping: 'İ' is 'i', not 'i̇'). */
const goLower = (s: string) => [...s].map((c) => (c === '\u0130' ? 'i' : c.toLowerCase())).join('');

/** Go regexp's '.' is any character but '\n'. */
const TIME = /^([0-9]{2}):([0-9]{2}):([0-9]{2})([^\n][0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$/u;

/** strfmt.IsDateTime: a date, 't', then a time checked by a pattern, hours ≤ 23, minutes and seconds ≤ 59. */
function isDateTime(s: string): boolean {
  if (Buffer.byteLength(s) < 4) return false;
  const parts = goLower(s).split('t');
  if (parts.length < 2 || !isDate(parts[0])) return false;
  const m = TIME.exec(parts[1]);
  return m !== null && m[1] <= '23' && m[2] <= '59' && m[3] <= '59';
}

/** format.go ConstantFormats: name → (cel-go's Name, validator over the JS string). */
const FORMATS: Record<string, [string, (s: string) => string[]]> = {
  dns1123Label: ['DNS1123Label', (s) => dns1123Label(toBinary(s), 'characters')],
  dns1123Subdomain: ['DNS1123Subdomain', (s) => dns1123Subdomain(toBinary(s), 'characters')],
  dns1035Label: ['DNS1035Label', (s) => dns1035Label(toBinary(s))],
  qualifiedName: ['QualifiedName', (s) => labelKey(toBinary(s))],
  dns1123LabelPrefix: ['DNS1123LabelPrefix', (s) => dns1123Label(maskTrailingDash(toBinary(s)), 'characters')],
  dns1123SubdomainPrefix: ['DNS1123SubdomainPrefix', (s) => dns1123Subdomain(maskTrailingDash(toBinary(s)), 'characters')],
  dns1035LabelPrefix: ['DNS1035LabelPrefix', (s) => dns1035Label(maskTrailingDash(toBinary(s)))],
  labelValue: ['LabelValue', (s) => labelValue(toBinary(s))],
  uri: ['URI', (s) => uri(toBinary(s))],
  uuid: ['uuid', (s) => (UUID.test(s) ? [] : ['does not match the UUID format'])],
  byte: ['byte', (s) => (BASE64.test(s) ? [] : ['invalid base64'])],
  date: ['date', (s) => (isDate(s) ? [] : ['invalid date'])],
  datetime: ['datetime', (s) => (isDateTime(s) ? [] : ['invalid datetime'])],
};
const NAMED = new Map(Object.entries(FORMATS).map(([key, [name, validate]]) => [key, new NamedFormat(name, validate)]));

export function registerFormat(env: Environment): void {
  const T = 'kubernetes.NamedFormat';
  registerKubeType(env, T, NamedFormat);
  env.registerType('FormatNamespace', FormatNamespace);
  env.registerConstant('format', 'FormatNamespace', new FormatNamespace());
  for (const [key, format] of NAMED) env.registerFunction(`FormatNamespace.${key}(): ${T}`, () => format);
  env.registerFunction(`FormatNamespace.named(string): optional<${T}>`, (_: FormatNamespace, name: string) => {
    const format = Object.hasOwn(FORMATS, name) ? NAMED.get(name) : undefined;
    return format ? Optional.of(format) : Optional.none();
  });
  // A Go []string: refused as groups or extra, as kube refuses it.
  env.registerFunction(`${T}.validate(string): optional<list<string>>`, (format: NamedFormat, s: string) => {
    const errors = format.validate(s);
    return errors.length === 0 ? Optional.none() : Optional.of(markNative(errors));
  });
}
