/**
 * The dev OIDC issuer: a real OpenID Provider (oidc-provider) over HTTPS, with
 * a demo user and the `kubernetes` client that kubelogin uses by default. The
 * quick start logs in against it, and the tests get real id_tokens from it.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, calculateJwkThumbprint, type JWK } from 'jose';
import type { ClientMetadata, Configuration } from 'oidc-provider';
import { html, interactionRoutes, pageHtml, type DevUser } from './interactions.js';
import { createMemoryAdapter } from './memory-adapter.js';

export type { DevUser } from './interactions.js';

/** The quick start's user: log in as `demo` / `demo`. */
export const demoUser: DevUser = Object.freeze({
  login: 'demo',
  password: 'demo',
  claims: Object.freeze({
    sub: 'demo',
    email: 'demo@example.com',
    email_verified: true,
    name: 'Demo User',
    preferred_username: 'demo',
    groups: Object.freeze(['developers', 'infrastructure']),
  }),
});

/**
 * The client kubectl's OIDC plugins (int128/kubelogin) use by default: public,
 * PKCE, refresh tokens, and kubelogin's loopback redirect URIs. As a native
 * client, any port on those loopback hosts is accepted (RFC 8252).
 */
export const kubernetesClient: ClientMetadata = {
  client_id: 'kubernetes',
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  // With and without the trailing slash: kubelogin sends the URI as configured,
  // while WHATWG URL parsing (openid-client, browsers) adds the slash.
  redirect_uris: [
    ...['http://localhost:8000', 'http://localhost:18000', 'http://127.0.0.1:8000'].flatMap((u) => [u, `${u}/`]),
    'urn:ietf:wg:oauth:2.0:oob',
  ],
};

/** How to start a dev issuer. */
export interface DevIssuerOptions {
  /** PEM serving certificate and key; the certificate must name `host`. */
  readonly tls: { readonly cert: string; readonly key: string };
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0 (any free port). Pass an old issuer's port to restart it in place. */
  readonly port?: number;
  /** Private signing keys (with `kid` and `alg`). Default: a fresh RS256 and ES256 key. */
  readonly jwks?: { readonly keys: readonly JWK[] };
  /** id_token lifetime in seconds. Default 3600. */
  readonly idTokenTTL?: number;
  /** Users besides {@link demoUser}; one with the same login replaces it. */
  readonly users?: readonly DevUser[];
  /** Clients besides {@link kubernetesClient}, e.g. a confidential web client. */
  readonly clients?: readonly ClientMetadata[];
}

/** A running dev issuer. */
export interface DevIssuer {
  /** `https://host:port`, no trailing slash: exactly the `iss` of its tokens. */
  readonly url: string;
  readonly port: number;
  /** The private signing keys, so tests can mint tokens the issuer would have signed. */
  readonly jwks: { readonly keys: readonly JWK[] };
  /** Stops listening and closes every connection, so the port is free at once. */
  close(): Promise<void>;
}

const SCOPE_CLAIMS = {
  email: ['email', 'email_verified'],
  profile: [
    'name',
    'given_name',
    'family_name',
    'middle_name',
    'nickname',
    'preferred_username',
    'profile',
    'picture',
    'website',
    'gender',
    'birthdate',
    'zoneinfo',
    'locale',
    'updated_at',
  ],
  groups: ['groups'],
};

/** Claims the provider sets itself; a user's claim of that name is never released. */
const PROVIDER_CLAIMS = new Set([
  'sub', 'iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'auth_time', 'nonce', 'acr', 'amr', 'azp', 'at_hash', 'c_hash', 's_hash', 'sid',
]);

type ProviderModule = typeof import('oidc-provider');
let providerModule: Promise<ProviderModule> | undefined;

/**
 * oidc-provider prints "Unsupported runtime" when imported on Node 20 (it asks
 * for 22+); the dev stack runs fine there, and the notice would otherwise land
 * in every test's output. Only that library's own notices are held back, and
 * only while it loads.
 */
function loadProvider(): Promise<ProviderModule> {
  providerModule ??= (async () => {
    const { warn, info } = console;
    const notOurs = (write: typeof console.warn) => (...args: unknown[]) => {
      // eslint-disable-next-line no-control-regex -- ESC starts the colour code oidc-provider may put before its warning
      if (!/^(\x1b\[[\d;]*m)?oidc-provider (WARNING|NOTICE):/.test(String(args[0]))) write(...args);
    };
    console.warn = notOurs(warn);
    console.info = notOurs(info);
    try {
      return await import('oidc-provider');
    } finally {
      console.warn = warn;
      console.info = info;
    }
  })();
  return providerModule;
}

async function signingKey(alg: 'RS256' | 'ES256'): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, alg, use: 'sig', kid: await calculateJwkThumbprint(jwk) };
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Starts a dev OIDC issuer over HTTPS. */
export async function startDevIssuer(opts: DevIssuerOptions): Promise<DevIssuer> {
  const { default: Provider } = await loadProvider();
  const host = opts.host ?? '127.0.0.1';
  const jwks = opts.jwks ?? { keys: await Promise.all([signingKey('RS256'), signingKey('ES256')]) };
  const users = new Map([demoUser, ...(opts.users ?? [])].map((u) => [u.login, u]));
  const bySub = new Map([...users.values()].map((u) => [u.claims.sub, u]));

  // Claims outside the standard scopes ride along with openid.
  const scoped = new Set(Object.values(SCOPE_CLAIMS).flat());
  const extraClaims = [...bySub.values()]
    .flatMap((u) => Object.keys(u.claims))
    .filter((c) => !scoped.has(c) && !PROVIDER_CLAIMS.has(c));

  const server = createServer({ cert: opts.tls.cert, key: opts.tls.key });
  const port = await listen(server, host, opts.port ?? 0);
  const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;

  const configuration: Configuration = {
    adapter: createMemoryAdapter(),
    // Copies: the provider must not share (or change) the exported objects.
    clients: structuredClone([kubernetesClient, ...(opts.clients ?? [])]),
    jwks: structuredClone(jwks),
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: { openid: ['sub', ...new Set(extraClaims)], ...SCOPE_CLAIMS },
    scopes: ['openid', 'offline_access', ...Object.keys(SCOPE_CLAIMS)],
    // kube-apiserver reads claims from the id_token only, so requested claims must be in it.
    conformIdTokenClaims: false,
    // Like Keycloak, refresh tokens go to every client allowed the grant. The
    // OIDC rule that offline_access needs prompt=consent would otherwise deny
    // them to kubelogin and to the proxy's own login, which do not send it.
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Every refresh rotates the refresh token, and using a rotated one again revokes
    // the whole grant (as Okta, Entra ID and Auth0 do with rotation on): the strict
    // case the proxy's shared refresh lock exists for.
    rotateRefreshToken: () => true,
    features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      const user = bySub.get(sub);
      return user && { accountId: sub, claims: () => ({ ...user.claims }) };
    },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      IdToken: opts.idTokenTTL ?? 3600,
      RefreshToken: 14 * 86_400,
      Interaction: 3600,
      Session: 14 * 86_400,
      Grant: 14 * 86_400,
    },
    clientBasedCORS: () => false,
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = pageHtml('Sign-in error', `<p><code>${html(String(out.error))}</code>: ${html(String(out.error_description ?? ''))}</p>`);
    },
  };
  let provider;
  try {
    provider = new Provider(url, configuration);
  } catch (err) {
    server.close();
    throw err;
  }
  const interactions = interactionRoutes(provider, users);
  const callback = provider.callback();
  server.on('request', (req, res) => {
    interactions(req, res).then(
      (handled) => {
        if (!handled) void callback(req, res);
      },
      () => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end('dev issuer error\n');
        else res.destroy();
      },
    );
  });

  return {
    url,
    port,
    jwks,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive and in-flight connections would otherwise hold the port open.
        server.closeAllConnections();
      }),
  };
}

async function logoutSource(ctx: { body?: unknown }, form: string): Promise<void> {
  ctx.body = pageHtml(
    'Sign out of the dev issuer?',
    `${form}<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Sign out</button>`,
  );
}

async function postLogoutSuccessSource(ctx: { body?: unknown }): Promise<void> {
  ctx.body = pageHtml('Signed out', '');
}
