/**
 * nginx as the floor a user could pick instead: Debian's package, configured
 * here as a TLS-terminating reverse proxy with the same client certificate to
 * the upstream, the same static identity headers, and no authentication.
 * Like kube-front-proxy it offers HTTP/2 (ALPN h2, HTTP/1.1 the fallback) when
 * its build has the module, with the same 250 streams per connection.
 * It runs in the foreground from a prefix of its own (pid file, logs, temp
 * folders), so it never touches /etc/nginx or a system instance.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface NginxSetup {
  /** Folder of its own: nginx.conf, nginx.pid, error.log, access.log, temp folders. */
  readonly prefix: string;
  readonly port: number;
  readonly upstreamPort: number;
  readonly servingCert: string;
  readonly servingKey: string;
  readonly upstreamCA: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** Header lines [name, value, …] set on every upstream request: the identity the proxy would send. */
  readonly identityHeaders: readonly string[];
  /** Open-file limit of each worker; every watch holds two (client and upstream). */
  readonly maxFiles: number;
  /** Offer HTTP/2 (ALPN h2, HTTP/1.1 the fallback) with this many concurrent streams per connection; unset: HTTP/1.1 only. */
  readonly http2MaxStreams?: number;
}

/** `nginx -v` (nginx prints it on stderr), or undefined when nginx is not installed. */
export function nginxVersion(): string | undefined {
  const run = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  if (run.error || run.status !== 0) return undefined;
  return run.stderr.trim().replace(/^nginx version:\s*/, '');
}

/** Whether this nginx was built with HTTP/2 (`nginx -V` lists http_v2_module; Debian's nginx-light may lack it). */
export function nginxHttp2(): boolean {
  const run = spawnSync('nginx', ['-V'], { encoding: 'utf8' });
  return !run.error && run.status === 0 && /--with-http_v2_module\b/.test(run.stderr);
}

/** nginx 1.25.1 replaced `listen … http2` with the `http2 on` directive. */
function http2Directive(): 'listen' | 'directive' {
  const [major = 0, minor = 0, patch = 0] = (nginxVersion() ?? '').replace(/^nginx\//, '').split('.').map(Number);
  return major * 1e6 + minor * 1e3 + patch >= 1_025_001 ? 'directive' : 'listen';
}

/** Writes the prefix folder and its nginx.conf; returns the nginx command line. */
export function prepareNginx(setup: NginxSetup): { command: string; args: string[] } {
  for (const dir of ['', 'temp']) mkdirSync(join(setup.prefix, dir), { recursive: true });
  const file = join(setup.prefix, 'nginx.conf');
  writeFileSync(file, nginxConf(setup));
  return {
    command: 'nginx',
    args: ['-p', setup.prefix, '-c', file, '-e', join(setup.prefix, 'error.log'), '-g', 'daemon off;'],
  };
}

/** `proxy_set_header` lines for the identity headers, each value quoted (and refused where nginx would read it otherwise). */
function identityLines(headers: readonly string[]): string {
  const quote = (value: string) => {
    // eslint-disable-next-line no-control-regex -- control bytes are what it refuses: nginx's quoted string cannot carry them
    if (/["\\$\x00-\x1f\x7f]/.test(value)) throw new Error(`nginx: header value not supported here: ${JSON.stringify(value)}`);
    return `"${value}"`;
  };
  const lines: string[] = [];
  for (let i = 0; i < headers.length; i += 2) lines.push(`      proxy_set_header ${headers[i]} ${quote(headers[i + 1])};`);
  return lines.join('\n');
}

function nginxConf(setup: NginxSetup): string {
  const temp = (name: string) => join(setup.prefix, 'temp', name);
  const h2 = setup.http2MaxStreams === undefined ? undefined : http2Directive();
  const http2Lines =
    setup.http2MaxStreams === undefined
      ? ''
      : `${h2 === 'directive' ? '    http2 on;\n' : ''}    # HTTP/2 clients (streams of one connection) get kube-front-proxy's and kube-apiserver's limit, not nginx's 128.
    http2_max_concurrent_streams ${setup.http2MaxStreams};
`;
  return `# Written by bench/nginx.ts for one benchmark run.
${process.getuid?.() === 0 ? 'user root root;\n' : ''}worker_processes auto;
worker_rlimit_nofile ${setup.maxFiles};
pid ${join(setup.prefix, 'nginx.pid')};
error_log ${join(setup.prefix, 'error.log')} warn;

events {
  worker_connections ${setup.maxFiles};
}

http {
  access_log ${join(setup.prefix, 'access.log')} combined buffer=64k flush=1s;
  client_body_temp_path ${temp('body')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};

  map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      '';
  }

  upstream kube {
    server 127.0.0.1:${setup.upstreamPort};
    keepalive 256;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
  }

  server {
    listen 127.0.0.1:${setup.port} ssl${h2 === 'listen' ? ' http2' : ''} reuseport;
${http2Lines}    ssl_certificate ${setup.servingCert};
    ssl_certificate_key ${setup.servingKey};
    keepalive_requests 100000000;
    keepalive_timeout 65s;

    location / {
      proxy_pass https://kube;
      proxy_http_version 1.1;
      proxy_set_header Host $proxy_host;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Authorization "";
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header Audit-ID $request_id;
${identityLines(setup.identityHeaders)}
      proxy_ssl_certificate ${setup.clientCert};
      proxy_ssl_certificate_key ${setup.clientKey};
      proxy_ssl_trusted_certificate ${setup.upstreamCA};
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_ssl_session_reuse on;
      # Watches and tunnels: stream every byte at once, never time out an idle one.
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }
  }
}
`;
}
