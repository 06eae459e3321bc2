/**
 * Field types shared by the configuration schemas: durations, addresses, file
 * paths, URLs, and the guard for rules that read several fields.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDuration } from './duration.js';

/** Node's timers overflow past 2^31-1 ms and then fire at once; refuse such durations. */
const MAX_DURATION_MS = 2_147_483_647;

export const duration = z
  .string({ error: (iss) => (iss.input === undefined ? undefined : 'expected a duration such as 30s, 5m or 1h30m (a bare number has no unit)') })
  .transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a duration: "${text}"; write it like 30s, 5m, 1h30m or 250ms` });
      return z.NEVER;
    }
    if (ms > MAX_DURATION_MS) {
      ctx.addIssue({ code: 'custom', message: `"${text}" is too long; at most 596h (Node's timers overflow beyond that)` });
      return z.NEVER;
    }
    return ms;
  })
  .meta({ typeName: 'duration' });

export const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]*):\d{1,5}$/, {
    message: 'expected host:port, e.g. 127.0.0.1:8443 or [::]:8443 (":8443" for every address)',
  })
  .refine((v) => {
    const port = /:(\d{1,5})$/.exec(v);
    return !port || Number(port[1]) <= 65_535;
  }, 'the port must be between 0 and 65535')
  .meta({ typeName: 'host:port' });

/** A file path; relative paths are resolved against the config file's folder by load.ts (found there by this typeName). */
export const filePath = z.string().min(1, 'must not be empty').meta({ typeName: 'file path' });

/**
 * Headers the proxy sets or strips itself; an identity header by one of these
 * names would fight that. Compared with `_` read as `-`, as the proxy compares
 * client headers (proxy/header-names.ts foldName).
 */
const RESERVED_HEADERS =
  /^(authorization|cookie|host|connection|keep-alive|te|trailer|transfer-encoding|upgrade|content-length|content-type|expect|audit-id|forwarded|x-real-ip|x-forwarded|x-forwarded-.*|proxy-.*|impersonate-.*|sec-websocket-.*)$/i;

/** One header name, or several: the first is the one we set, all of them are stripped from clients. */
export const headerNames = z
  .union([z.string(), z.array(z.string()).min(1)], { error: 'expected a header name, or a list of header names' })
  .transform((v) => (Array.isArray(v) ? v : [v]))
  .pipe(
    z.array(
      z
        .string()
        .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid HTTP header name')
        .refine((name) => !RESERVED_HEADERS.test(name.replaceAll('_', '-')), 'this header is handled by the proxy itself; choose another name'),
    ),
  )
  .meta({ typeName: 'header name or list' });

/** True for hosts whose traffic never leaves the machine: 127.0.0.0/8, ::1, localhost (a URL's hostname brackets IPv6). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return host === 'localhost' || host === '[::1]' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

export const parseUrl = (text: string): URL | undefined => (URL.canParse(text) ? new URL(text) : undefined);

/**
 * An http(s) URL with no credentials, query or fragment. Plain http only to a
 * loopback host: what travels over it (identity headers, keys) must not be
 * readable or forgeable by anyone on the network.
 */
export const httpsUrl = (example: string, whyHttps: string) =>
  z
    .url({ protocol: /^https?$/, error: (iss) => (iss.input === undefined ? undefined : `expected an absolute https URL, e.g. ${example}`) })
    .check(
      z.superRefine((text, ctx) => {
        const url = parseUrl(text);
        if (!url) return;
        if (url.username || url.password) ctx.addIssue({ code: 'custom', message: 'must not contain a user name or password' });
        if (url.search || url.hash) ctx.addIssue({ code: 'custom', message: 'must not contain a query (?…) or fragment (#…)' });
        if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
          ctx.addIssue({ code: 'custom', message: `http:// is refused for ${url.hostname}: ${whyHttps}; use https:// (plain http is allowed only to 127.0.0.1, ::1 or localhost)` });
        }
      }, { when: (payload) => payload.issues.length === 0 }),
    )
    .meta({ typeName: 'URL' });

/**
 * A `when` guard for rules that read several fields: run the rule unless one
 * of those fields (or the object itself) already failed. Paths are relative
 * to the object the rule is attached to.
 */
export function validAt(...fields: string[]) {
  return (payload: z.core.ParsePayload): boolean =>
    typeof payload.value === 'object' &&
    payload.value !== null &&
    !payload.issues.some((issue) => {
      const head = issue.path?.[0];
      if (head === undefined) return issue.code !== 'unrecognized_keys';
      return fields.includes(String(head));
    });
}

