/**
 * `authentication.session`: browser single sign-on. The identity of a session
 * comes from its id_token through the `jwt[]` entry of the same issuer (one
 * claim-mapping path, not two); load-time rules in schema.ts check that pairing.
 */
import { z } from 'zod';
import { duration, filePath, httpsUrl, isLoopbackHost, parseUrl } from './fields.js';

/** An origin as browsers send it in `Origin`: scheme://host[:port], https except to loopback; kept in that normal form. */
const origin = z
  .string()
  .transform((text, ctx) => {
    const url = parseUrl(text);
    const normal = url?.origin;
    if (!url || !normal || normal === 'null' || normal.toLowerCase() !== text.toLowerCase()) {
      const hint = normal && normal !== 'null' ? `; for this URL that is ${normal}` : '';
      ctx.addIssue({ code: 'custom', message: `expected an origin, scheme://host[:port] with no path or trailing slash, e.g. https://dashboard.example.com${hint}` });
      return z.NEVER;
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
      ctx.addIssue({ code: 'custom', message: `${url.protocol}// is refused for ${url.hostname}: a page served in clear text can be changed on the network; use https:// (http only for 127.0.0.1, ::1 or localhost)` });
      return z.NEVER;
    }
    return normal;
  })
  .meta({ typeName: 'origin' });

const oidc = z
  .strictObject({
    issuerURL: httpsUrl('https://idp.example.com', 'discovery and tokens fetched in clear text can be read or replaced on the path').describe(
      'The identity provider; must equal the issuer.url of one authentication.jwt entry, which maps the id_token to the identity.',
    ),
    clientID: z.string().min(1).describe('The OAuth client registered for the proxy; must be one of that jwt entry\'s audiences.'),
    clientSecretFile: filePath
      .optional()
      .describe('File holding the client secret; or set KFP_OIDC_CLIENT_SECRET. With neither, the proxy is a public client (PKCE only).'),
    redirectURL: httpsUrl('https://proxy.example.com/oauth2/callback', 'the authorization code would cross the network in clear text').describe(
      'The callback URL registered at the provider: this proxy\'s address and <pathPrefix>/callback.',
    ),
    scopes: z
      .array(z.string().min(1))
      .default(['openid', 'email', 'profile', 'offline_access'])
      .refine((s) => s.includes('openid'), 'must include openid')
      .describe('Scopes requested at login; offline_access asks for a refresh token.'),
    extraAuthParams: z.record(z.string(), z.string()).default({}).describe('Extra parameters for the authorization request, e.g. { prompt: login } or { hd: example.com }.'),
    certificateAuthorityFile: filePath
      .optional()
      .describe("CA bundle (PEM) for the provider's TLS certificate; default: the matching jwt entry's certificateAuthorityFile."),
  })
  .describe('The OpenID Connect client the proxy logs people in with.');

/** A `__Host-` cookie has no Domain (browsers refuse it otherwise), so no sibling subdomain can plant one of that name. */
const HOST_PREFIX = /^__host-/i;

/** The session cookie's name when none is configured: `__Host-` unless a domain is shared. */
export const defaultSessionCookieName = (domain: string) => (domain ? '_kfp_session' : '__Host-kfp-session');

const cookie = z
  .strictObject({
    name: z
      .string()
      .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'not a valid cookie name')
      .optional()
      .describe(
        'Session cookie name. Default: __Host-kfp-session, which a sibling subdomain cannot overwrite or shadow; _kfp_session when domain is set (a __Host- cookie cannot have a Domain). It is removed from requests before they are forwarded.',
      ),
    secretFile: filePath
      .optional()
      .describe('File holding the secret that signs the cookie (at least 32 bytes); or set KFP_COOKIE_SECRET. Several lines: the first signs, all verify (rotation).'),
    domain: z.string().default('').describe('Cookie domain; ".example.com" gives one login for every subdomain behind the gateway. Empty: this host only.'),
    maxAge: duration.prefault('12h').describe('Absolute session lifetime: a new login is needed after this, however active.'),
    idleTimeout: duration.prefault('1h').describe('A session unused for this long ends.'),
  })
  .superRefine((c, ctx) => {
    if (c.name !== undefined && HOST_PREFIX.test(c.name) && c.domain) {
      ctx.addIssue({
        code: 'custom',
        path: ['name'],
        message: `a __Host- cookie cannot have a domain (browsers refuse it); remove cookie.domain, or choose a name without the __Host- prefix (e.g. _kfp_session)`,
      });
    }
  })
  .transform((c) => ({ ...c, name: c.name ?? defaultSessionCookieName(c.domain) }))
  .prefault({})
  .describe('The session cookie: always HttpOnly, Secure and SameSite=Lax.');

const store = z
  .strictObject({
    type: z.enum(['memory', 'redis']).default('memory').describe('memory: one replica, bounded; redis: shared by several replicas.'),
    maxEntries: z.number().int().min(1).default(10_000).describe('memory: most sessions kept; the least recently used go first.'),
    redis: z
      .strictObject({
        url: z
          .string()
          .refine((u) => /^rediss?:$/.test(parseUrl(u)?.protocol ?? ''), 'expected redis://host:port or rediss://host:port')
          .default('redis://127.0.0.1:6379')
          .describe('Redis URL; rediss:// for TLS. A password may be given in the URL.'),
        keyPrefix: z.string().default('kfp:').describe('Prefix of every key the proxy writes.'),
      })
      .prefault({})
      .describe('redis: where sessions live.'),
  })
  .prefault({})
  .describe('Where sessions live.');

const kubeconfig = z
  .strictObject({
    clusterName: z.string().min(1).default('kubernetes').describe('Cluster and context name in the kubeconfig the page offers.'),
    server: httpsUrl('https://kube.example.com', 'kubectl would send tokens in clear text')
      .optional()
      .describe("The server URL in the kubeconfig; default: https:// and the Host the browser used."),
    certificateAuthorityFile: filePath
      .optional()
      .describe("CA bundle (PEM) that verifies the proxy's serving certificate, embedded in the kubeconfig; omit when it chains to a public CA."),
    kubeloginClientID: z
      .string()
      .min(1)
      .optional()
      .describe('A public OAuth client for int128/kubelogin; when set, the page also offers a kubeconfig whose exec entry logs in and refreshes by itself.'),
  })
  .prefault({})
  .describe('The self-service kubeconfig page at <pathPrefix>/kubeconfig.');

export const sessionSchema = z
  .strictObject({
    oidc,
    cookie,
    store,
    allowedOrigins: z
      .array(origin)
      .default([])
      .describe(
        "Origins besides the proxy's own (e.g. https://dashboard.example.com) from which a cookie-authenticated request that changes state, or a WebSocket/SPDY upgrade, is accepted.",
      ),
    allowedRedirectHosts: z
      .array(z.string().min(1))
      .default([])
      .describe('Hosts besides the proxy\'s own that a login may return to (rd=); exact host names, e.g. app.example.com.'),
    pathPrefix: z
      .string()
      .regex(/^\/[A-Za-z0-9._~\-/]*[A-Za-z0-9._~-]$/, 'expected a path such as /oauth2')
      .default('/oauth2')
      .describe('Where the login routes live: <pathPrefix>/start, /callback, /sign_out, /userinfo, /kubeconfig, /backchannel_logout.'),
    kubeconfig,
    refreshBefore: duration
      .prefault('2m')
      .describe('Refresh the tokens with the refresh token this long before the id_token expires.'),
  })
  .superRefine((s, ctx) => {
    const redirect = parseUrl(s.oidc.redirectURL);
    if (redirect && redirect.pathname !== `${s.pathPrefix}/callback`) {
      ctx.addIssue({ code: 'custom', path: ['oidc', 'redirectURL'], message: `its path must be ${s.pathPrefix}/callback, where the proxy serves the callback` });
    }
  })
  .describe('Browser single sign-on: login with the identity provider, then a session cookie.');

export type SessionConfig = z.output<typeof sessionSchema>;
