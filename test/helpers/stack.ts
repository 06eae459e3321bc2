/**
 * The real parts every integration test needs, started per test on port 0 and
 * stopped in teardown: the dev PKI, a real OIDC provider (oidc-provider), the
 * dev upstream that authenticates like kube-apiserver's requestheader
 * authenticator, and the proxy itself.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT, importJWK, type JWK, type JWTPayload } from 'jose';
import { Agent, request } from 'undici';
import { parseConfig } from '../../src/config/load.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import { startDevIssuer, type DevIssuer, type DevIssuerOptions } from '../../dev/issuer.js';
import { loginWithPassword } from '../../dev/login-client.js';
import { ensureDevPki, type DevPki } from '../../dev/pki.js';
import { startDevUpstream, type DevUpstream } from '../../dev/upstream.js';
import { silentLogger, type Logger } from '../../src/observe/logger.js';
import { startProxy, type RunningProxy } from '../../src/server.js';
import { freePort } from './ports.js';

export { freePort };

/** The PKI is made once per test process and shared (making keys is the slow part). */
let sharedPki: Promise<DevPki> | undefined;
export function devPki(): Promise<DevPki> {
  return (sharedPki ??= ensureDevPki(join(process.cwd(), '.cache/test-pki')));
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface Stack {
  readonly pki: DevPki;
  readonly servingCA: string;
  readonly issuer: DevIssuer;
  /** Restarts the issuer on its port with its keys; it forgets every grant and session. */
  restartIssuer(): Promise<void>;
  readonly upstream: DevUpstream;
  readonly proxy: RunningProxy;
  /** The proxy's validated configuration, to start more replicas of it. */
  readonly config: Config;
  /** An undici agent that trusts the proxy's serving CA. */
  readonly client: Agent;
  /** A real id_token for a user of the issuer, through the authorization-code flow. */
  login(username?: string, password?: string): Promise<string>;
  /** A token signed with the issuer's own private key, with these claims over sane defaults. */
  mint(claims?: JWTPayload, header?: { alg?: string; kid?: string }): Promise<string>;
  /** A request to the proxy. */
  fetch(path: string, init?: FetchInit): ReturnType<typeof request>;
  /** A request straight to the upstream with the front-proxy client certificate (no proxy). */
  direct(path: string, init?: FetchInit): ReturnType<typeof request>;
}

export interface FetchInit {
  method?: string;
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
}

export interface StackOptions {
  /** Changes to the proxy configuration (merged over the stack's own). */
  configure?: (config: ConfigInput) => ConfigInput;
  logger?: Logger;
  /** Runs after the dev servers start and before the proxy does (e.g. to copy certificate files). */
  beforeProxy?: (pki: DevPki) => Promise<void>;
  /**
   * Browser login: registers a confidential client `kube-front-proxy` at the
   * issuer and configures authentication.session for it (memory store unless
   * `redisURL` is given). The proxy then listens on a fixed free port, since the
   * callback URL must be registered before it starts.
   */
  login?: {
    redisURL?: string;
    dir: string;
    port?: number;
    /** The login host's name in the callback URL (default 127.0.0.1); a browser test maps it to 127.0.0.1. */
    host?: string;
  };
  /** The issuer's id_token lifetime in seconds (default 3600). */
  idTokenTTL?: number;
}

/** The confidential client the proxy logs browsers in with, in login stacks. */
export const PROXY_CLIENT = { id: 'kube-front-proxy', secret: 'proxy-client-secret-for-tests-only' };


export async function startStack(t: Teardown, options: StackOptions = {}): Promise<Stack> {
  const pki = await devPki();
  const pem = (file: string) => readFile(file, 'utf8');
  const servingCA = await pem(pki.servingCA);
  const loginPort = options.login ? (options.login.port ?? (await freePort())) : 0;
  const proxyOrigin = `https://${options.login?.host ?? '127.0.0.1'}:${loginPort}`;
  const issuerOptions: DevIssuerOptions = {
    tls: { cert: await pem(pki.servingCert), key: await pem(pki.servingKey) },
    ...(options.idTokenTTL ? { idTokenTTL: options.idTokenTTL } : {}),
    clients: options.login
      ? [
          {
            client_id: PROXY_CLIENT.id,
            client_secret: PROXY_CLIENT.secret,
            token_endpoint_auth_method: 'client_secret_basic',
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            redirect_uris: [`${proxyOrigin}/oauth2/callback`],
            post_logout_redirect_uris: [`${proxyOrigin}/`],
          },
        ]
      : [],
  };
  let issuer = await startDevIssuer(issuerOptions);
  t.teardown(() => issuer.close());
  const upstream = await startDevUpstream({
    tls: { cert: await pem(pki.upstreamCert), key: await pem(pki.upstreamKey) },
    clientCA: await pem(pki.frontProxyCA),
  });
  t.teardown(() => upstream.close());

  const session = options.login && (await loginConfig(options.login, issuer.url, proxyOrigin, pki));
  const base: ConfigInput = {
    listen: {
      address: `127.0.0.1:${loginPort}`,
      healthAddress: '127.0.0.1:0',
      tls: { certFile: pki.servingCert, keyFile: pki.servingKey },
    },
    upstream: {
      url: upstream.url,
      caFile: pki.upstreamCA,
      clientCertFile: pki.frontProxyClientCert,
      clientKeyFile: pki.frontProxyClientKey,
    },
    authentication: {
      jwt: [
        {
          issuer: { url: issuer.url, ...(session ? { audiences: ['kubernetes', PROXY_CLIENT.id], audienceMatchPolicy: 'MatchAny' as const } : { audiences: ['kubernetes'] }), certificateAuthorityFile: pki.servingCA },
          claimMappings: {
            username: { claim: 'email', prefix: '' },
            groups: { claim: 'groups', prefix: 'oidc:' },
            uid: { claim: 'sub' },
          },
        },
      ],
      ...(session ? { session } : {}),
    },
    audit: { path: '-', format: 'combined' },
  };
  await options.beforeProxy?.(pki);
  const config = parseConfig(options.configure ? options.configure(base) : base, process.cwd());
  const proxy = await startProxy(config, options.logger ?? silentLogger);
  t.teardown(() => proxy.close());
  const client = new Agent({ connect: { ca: servingCA } });
  t.teardown(() => client.close());

  const upstreamClient = new Agent({
    connect: {
      ca: await pem(pki.upstreamCA),
      cert: await pem(pki.frontProxyClientCert),
      key: await pem(pki.frontProxyClientKey),
    },
  });
  t.teardown(() => upstreamClient.close());
  const send = (base: string, dispatcher: Agent) => (path: string, init: FetchInit = {}) =>
    request(`${base}${path}`, { dispatcher, method: (init.method ?? 'GET') as 'GET', headers: init.headers, body: init.body });

  const signingKey = issuer.jwks.keys.find((k) => k.alg === 'RS256' || k.kty === 'RSA') as JWK & { kid: string };
  return {
    pki,
    servingCA,
    get issuer() {
      return issuer;
    },
    restartIssuer: async () => {
      await issuer.close();
      issuer = await startDevIssuer({ ...issuerOptions, port: issuer.port, jwks: issuer.jwks });
    },
    upstream,
    proxy,
    config,
    client,
    login: async (username = 'demo', password = 'demo') =>
      (
        await loginWithPassword({
          issuerURL: issuer.url,
          ca: servingCA,
          clientId: 'kubernetes',
          redirectURI: 'http://localhost:8000',
          username,
          password,
        })
      ).idToken,
    mint: async (claims = {}, header = {}) => {
      const now = Math.floor(Date.now() / 1000);
      const key = await importJWK(signingKey, 'RS256');
      return new SignJWT({
        iss: issuer.url,
        aud: 'kubernetes',
        sub: 'minted',
        email: 'minted@example.com',
        email_verified: true,
        groups: ['minted'],
        iat: now,
        exp: now + 300,
        ...claims,
      })
        .setProtectedHeader({ alg: header.alg ?? 'RS256', kid: header.kid ?? signingKey.kid })
        .sign(key);
    },
    fetch: send(proxy.url, client),
    direct: send(upstream.url, upstreamClient),
  };
}

/** authentication.session for a login stack: secrets written to files in `dir`. */
async function loginConfig(login: NonNullable<StackOptions['login']>, issuerURL: string, proxyOrigin: string, pki: DevPki) {
  const clientSecretFile = join(login.dir, 'client-secret');
  const cookieSecretFile = join(login.dir, 'cookie-secret');
  await writeFile(clientSecretFile, PROXY_CLIENT.secret);
  await writeFile(cookieSecretFile, randomBytes(48).toString('base64'));
  return {
    oidc: { issuerURL, clientID: PROXY_CLIENT.id, clientSecretFile, redirectURL: `${proxyOrigin}/oauth2/callback`, scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'] },
    cookie: { secretFile: cookieSecretFile },
    store: login.redisURL ? { type: 'redis' as const, redis: { url: login.redisURL } } : { type: 'memory' as const },
    kubeconfig: { certificateAuthorityFile: pki.servingCA, kubeloginClientID: 'kubernetes' },
  };
}

/** Waits until the proxy reports ready (issuer discovery done), failing after `ms`. */
export async function untilReady(proxy: RunningProxy, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (proxy.notReady().length) {
    if (Date.now() > deadline) throw new Error(`proxy not ready: ${proxy.notReady().join(', ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
