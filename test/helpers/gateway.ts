/**
 * The SSO gateway with real parts, for tests that browse several of its hosts:
 * the dev OpenID provider with the proxy's confidential client (a callback
 * registered per host that signs in), the proxy with `routes`, small HTTPS apps
 * that record what they are sent, and nginx (Debian's nginx-light has
 * auth_request) running a server block of the test's own. Chromium maps the
 * test's host names to 127.0.0.1 (launchBrowser's hostsTo127).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, type ServerOptions } from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { startDevIssuer, type DevIssuer, type DevUser } from '../../dev/issuer.js';
import type { DevPki } from '../../dev/pki.js';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { silentLogger } from '../../src/observe/logger.js';
import { startProxy, type RunningProxy } from '../../src/server.js';
import { devPki, PROXY_CLIENT, untilReady } from './stack.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A request an app was sent. */
export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

export interface RecordingApp {
  /** `https://127.0.0.1:<port>`, with the dev PKI's upstream certificate. */
  readonly url: string;
  readonly seen: SeenRequest[];
}

/** An HTTPS app on loopback that records every request; `answer` replies (default: 200 "the app"). */
export async function startRecordingApp(t: Teardown, answer: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => void res.end('the app')): Promise<RecordingApp> {
  const pki = await devPki();
  const seen: SeenRequest[] = [];
  const tls: ServerOptions = { cert: await readFile(pki.upstreamCert), key: await readFile(pki.upstreamKey) };
  const server = createServer(tls, (req, res) => {
    seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    answer(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  return { url: `https://127.0.0.1:${(server.address() as { port: number }).port}`, seen };
}

/** A route's upstream for a recording app: oauth2-proxy's application headers. */
export const appUpstream = (pki: DevPki, url: string) => ({ url, caFile: pki.upstreamCA, identity: 'application' as const });

export interface GatewayOptions {
  /** The proxy's port: fixed, since each callback is registered at the provider before the proxy starts. */
  readonly port: number;
  /** The login host (the configured callback's). */
  readonly loginHost: string;
  /** authentication.session.cookie.domain, e.g. `.gw.test`. */
  readonly cookieDomain?: string;
  /** Route hosts outside the cookie domain: each signs in on its own, so its callback is registered too. */
  readonly foreignHosts?: readonly string[];
  /** Users besides the dev provider's demo/demo (login = password). */
  readonly users?: readonly DevUser[];
  readonly routes: NonNullable<ConfigInput['routes']>;
}

export interface Gateway {
  readonly pki: DevPki;
  readonly issuer: DevIssuer;
  readonly proxy: RunningProxy;
  /** `https://<host>:<port>` (the proxy's port unless another is given). */
  readonly at: (host: string, port?: number) => string;
}

/** A user of the dev provider whose login and password are `name`, email `name@example.com`. */
export const gatewayUser = (name: string, groups: readonly string[]): DevUser => ({
  login: name,
  password: name,
  claims: { sub: name, email: `${name}@example.com`, email_verified: true, groups },
});

export async function startGateway(t: Teardown, options: GatewayOptions): Promise<Gateway> {
  const pki = await devPki();
  const pem = (file: string) => readFile(file, 'utf8');
  const at = (host: string, port = options.port) => `https://${host}:${port}`;
  const issuer = await startDevIssuer({
    tls: { cert: await pem(pki.servingCert), key: await pem(pki.servingKey) },
    users: options.users ?? [],
    clients: [
      {
        client_id: PROXY_CLIENT.id,
        client_secret: PROXY_CLIENT.secret,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: [options.loginHost, ...(options.foreignHosts ?? [])].map((host) => `${at(host)}/oauth2/callback`),
      },
    ],
  });
  t.teardown(() => issuer.close());

  const dir = await mkdtemp(join(tmpdir(), 'kfp-gateway-'));
  await writeFile(join(dir, 'client-secret'), PROXY_CLIENT.secret);
  await writeFile(join(dir, 'cookie-secret'), 'gateway-test-cookie-secret-0123456789abcdef0123456789');
  const config = parseConfig(
    {
      listen: { address: `127.0.0.1:${options.port}`, healthAddress: '127.0.0.1:0', tls: { certFile: pki.servingCert, keyFile: pki.servingKey } },
      routes: options.routes,
      authentication: {
        jwt: [
          {
            issuer: { url: issuer.url, audiences: [PROXY_CLIENT.id], certificateAuthorityFile: pki.servingCA },
            claimMappings: { username: { claim: 'email', prefix: '' }, groups: { claim: 'groups', prefix: 'oidc:' } },
          },
        ],
        session: {
          oidc: {
            issuerURL: issuer.url,
            clientID: PROXY_CLIENT.id,
            clientSecretFile: join(dir, 'client-secret'),
            redirectURL: `${at(options.loginHost)}/oauth2/callback`,
            scopes: ['openid', 'email', 'groups'],
          },
          cookie: { secretFile: join(dir, 'cookie-secret'), ...(options.cookieDomain && { domain: options.cookieDomain }) },
          store: { type: 'memory' },
        },
      },
      audit: { path: '-', format: 'combined' },
    },
    process.cwd(),
  );
  const proxy = await startProxy(config, silentLogger);
  t.teardown(() => proxy.close());
  await untilReady(proxy);
  return { pki, issuer, proxy, at };
}

/**
 * nginx in the foreground from a folder of its own, with `serverBlocks` (the
 * test's `server { … }` text) inside an http block that keeps every file in
 * that folder. Resolves once it answers TLS on `port`.
 */
export async function startNginx(t: Teardown, port: number, serverBlocks: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kfp-nginx-'));
  const temp = (name: string) => join(dir, 'temp', name);
  await mkdir(join(dir, 'temp'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  await writeFile(
    conf,
    `${process.getuid?.() === 0 ? 'user root root;\n' : ''}worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${temp('body')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};
${serverBlocks}
}
`,
  );
  const nginx = spawn('nginx', ['-p', dir, '-c', conf, '-e', join(dir, 'error.log'), '-g', 'daemon off;'], { stdio: 'ignore' });
  t.teardown(() => nginx.kill());
  const agent = new Agent({ connect: { rejectUnauthorized: false } });
  t.teardown(() => agent.close());
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const res = await request(`https://127.0.0.1:${port}/`, { dispatcher: agent });
      await res.body.dump();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`nginx did not listen on ${port} (its log: ${join(dir, 'error.log')})`, { cause: err });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

export interface ForwardAuthServer {
  readonly pki: DevPki;
  /** nginx's port, and the host name it serves. */
  readonly port: number;
  readonly host: string;
  /** The proxy's port (forward-auth is asked on 127.0.0.1) and the login host's origin. */
  readonly proxyPort: number;
  readonly loginOrigin: string;
  /** The route this server fronts (`route=`). */
  readonly route: string;
  /** The app behind nginx. */
  readonly appURL: string;
}

/**
 * The README's nginx server block: auth_request against forward-auth with the route
 * pinned and this server's own origin (never $http_host), the user headers passed to
 * the app, and a 401 sent to the login and back.
 */
export function forwardAuthServerBlock(s: ForwardAuthServer): string {
  const { pki } = s;
  const self = `https://${s.host}:${s.port}`;
  return `  server {
    listen 127.0.0.1:${s.port} ssl;
    server_name ${s.host};
    ssl_certificate ${pki.servingCert};
    ssl_certificate_key ${pki.servingKey};
    location = /_auth {
      internal;
      proxy_pass https://127.0.0.1:${s.proxyPort}/oauth2/auth?route=${s.route};
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URL ${self}$request_uri;
      proxy_set_header X-Original-Method $request_method;
    }
    location / {
      auth_request /_auth;
      auth_request_set $kfp_user $upstream_http_x_auth_request_user;
      auth_request_set $kfp_email $upstream_http_x_auth_request_email;
      auth_request_set $kfp_groups $upstream_http_x_auth_request_groups;
      error_page 401 = @signin;
      proxy_set_header X-User $kfp_user;
      proxy_set_header X-Email $kfp_email;
      proxy_set_header X-Groups $kfp_groups;
      proxy_pass ${s.appURL};
    }
    location @signin { return 302 ${s.loginOrigin}/oauth2/start?rd=${self}$request_uri; }
  }`;
}
