/**
 * `routes[]`: the SSO gateway's apps. Each route matches a host (exact or
 * `*.example.com`) and a path prefix, has an upstream of its own (the same
 * keys as the top-level `upstream`) and says who may pass. The longest match
 * wins; a request no route matches is a 404, never some default upstream.
 */
import { z } from 'zod';
import { routeUpstream } from './upstream-schema.js';

/** A DNS name, or `*.` and a DNS name: the wildcard covers exactly one more label, as in TLS certificates. */
const HOST_PATTERN = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

const host = z
  .string()
  .transform((text) => text.toLowerCase())
  .refine((text) => HOST_PATTERN.test(text), 'expected a host name such as finance.example.com or *.example.com (no port, no scheme)')
  .meta({ typeName: 'host' });

/** A path prefix matched on whole segments: `/finance` is `/finance` and `/finance/…`, not `/financial`. */
const pathPrefix = z
  .string()
  .regex(/^\/([A-Za-z0-9._~!$&'()*+,;=:@%-]+\/?)*$/, 'expected a path such as / or /finance (no query, no //)')
  .meta({ typeName: 'path' });

/** A claim name a rule may test: a top-level claim of the verified token. */
const CLAIM_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]*$/;
/** Claims that change per token or say nothing about a person: a rule on them is a mistake. */
const UNFIT_CLAIMS = new Set(['exp', 'nbf', 'iat', 'jti', 'nonce', 'at_hash', 'c_hash', 'auth_time', 'azp', 'aud', 'iss']);

const allow = z
  .strictObject({
    users: z.array(z.string().min(1)).default([]).describe('User names (as mapped: the username the upstream would see) that may pass.'),
    groups: z.array(z.string().min(1)).default([]).describe('Groups (as mapped, prefix included: oidc:finance) whose members may pass.'),
    emailDomains: z
      .array(
        z
          .string()
          .transform((d) => d.toLowerCase())
          .refine((d) => /^[a-z0-9.-]+\.[a-z]{2,}$/.test(d), 'expected a domain such as example.com'),
      )
      .default([])
      .describe("Domains whose addresses may pass, by the token's email claim (email_verified must not be false)."),
    claims: z
      .record(z.string(), z.union([z.string(), z.array(z.string()).min(1)]))
      .default({})
      .superRefine((claims, ctx) => {
        for (const name of Object.keys(claims)) {
          if (!CLAIM_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'is not a claim name: letters, digits, _ . : - only' });
          else if (UNFIT_CLAIMS.has(name)) {
            ctx.addIssue({ code: 'custom', path: [name], message: `${name} is about the token, not the person; test a claim that says who they are (hd, department, groups…)` });
          }
        }
      })
      .describe(
        'Claims the verified token must carry, each with one of the values given (for a list claim: containing one of them), e.g. { hd: example.com }. Required in addition to users/groups/emailDomains.',
      ),
  })
  .describe(
    'Who may pass: anyone matching one of users, groups or emailDomains (none given: every authenticated caller), and every claim in claims. Anyone else gets 403.',
  );

export const route = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'expected a short name of lower-case letters, digits and dashes, e.g. finance')
      .optional()
      .describe('Named in the audit line (route=) and the logs; default: host and path.'),
    host: host.optional().describe('The Host it answers for: exact, or *.example.com for any one label. Omitted: every host.'),
    pathPrefix: pathPrefix.default('/').describe('The path it answers for, matched on whole segments: /finance is /finance and /finance/…, not /financial.'),
    upstream: routeUpstream,
    public: z
      .boolean()
      .default(false)
      .describe('No login at all: for health pages and static assets. Requests go on with no identity, and any credential sent is not read.'),
    allow: allow.optional(),
  })
  .superRefine((r, ctx) => {
    if (r.public && r.allow !== undefined) ctx.addIssue({ code: 'custom', path: ['allow'], message: 'a public route lets everyone in; remove allow, or public' });
  });

export const routes = z
  .array(route)
  .min(1, 'list at least one route, or use the top-level upstream')
  .superRefine((list, ctx) => {
    const seen = new Map<string, number>();
    list.forEach((r, i) => {
      const key = `${r.host ?? '*'} ${r.pathPrefix.replace(/\/$/, '') || '/'}`;
      const first = seen.get(key);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: [i, 'pathPrefix'], message: `routes[${first}] has the same host and path prefix; merge them or tell them apart` });
      } else seen.set(key, i);
      const name = r.name;
      if (name !== undefined && list.findIndex((o) => o.name === name) !== i) {
        ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `routes[${list.findIndex((o) => o.name === name)}] is named ${name} already` });
      }
    });
  })
  .describe(
    'The SSO gateway: several upstreams, each for a host and path prefix, each with its own rule. The longest match wins; a request no route matches gets 404. Set routes or upstream, not both.',
  );

export type RouteConfig = z.output<typeof route>;
export type AllowRule = z.output<typeof allow>;
