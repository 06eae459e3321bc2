/**
 * Regular expressions as cel-go and kube run them: RE2 (re2js), linear in the
 * input whatever the pattern, refusing what RE2 refuses (backreferences,
 * lookaround). `matches` is CEL's; `find` and `findAll` are kube's regex
 * library (pkg/cel/library/regex.go). The library's JavaScript RegExp
 * backtracks, so `^(a+)+$` (harmless in kube-apiserver) over a claim the user
 * chose would stall the event loop for seconds.
 */
import type { Environment } from '@marcbachmann/cel-js';
import { LRUCache } from 'lru-cache';
import { RE2JS } from 're2js';
import { markNative } from './native-lists.js';

/** Compiled patterns, a few hundred at most (a pattern may come from a claim). */
const patterns = new LRUCache<string, RE2JS>({ max: 256 });

/**
 * The compiled pattern.
 *
 * @throws on a pattern RE2 refuses, with kube's wording (an evaluation error).
 */
export function re2(pattern: string): RE2JS {
  let compiled = patterns.get(pattern);
  if (!compiled) {
    try {
      compiled = RE2JS.compile(pattern);
    } catch (err) {
      throw new Error(`Illegal regex: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    patterns.set(pattern, compiled);
  }
  return compiled;
}

export function re2Matches(text: string, pattern: string): boolean {
  return re2(pattern).matcher(text).find();
}

/** Go's FindString: the leftmost match, or '' when there is none. */
function find(text: string, pattern: string): string {
  const m = re2(pattern).matcher(text);
  return m.find() ? (m.group() ?? '') : '';
}

/**
 * Go's FindAllString(text, n): successive non-overlapping matches, all when n < 0;
 * an empty match right after the previous match is skipped.
 */
function findAll(text: string, pattern: string, n = -1n): string[] {
  const out: string[] = [];
  const m = re2(pattern).matcher(text);
  let pos = 0;
  let previousEnd = -1;
  while ((n < 0n || BigInt(out.length) < n) && pos <= text.length && m.find(pos)) {
    const [start, end] = [m.start(), m.end()];
    const accept = !(end === start && start === previousEnd);
    if (end === pos) pos += (text.codePointAt(pos) ?? 0) > 0xffff ? 2 : 1;
    else pos = end;
    previousEnd = end;
    if (accept) out.push(text.slice(start, end));
  }
  return markNative(out);
}

export function registerRegex(env: Environment): void {
  env.registerFunction('string.find(string): string', find);
  env.registerFunction('string.findAll(string): list<string>', (s: string, p: string) => findAll(s, p));
  env.registerFunction('string.findAll(string, int): list<string>', findAll);
}
