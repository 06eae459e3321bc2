/**
 * `node --import bench/noauth-register.js src/cli.js …` runs the real proxy
 * (the same entry, server and pipeline) with its request authenticator swapped
 * at load time for noauth-authenticator's constant identity: the no-auth build
 * that scenario 3 compares with, made without touching src/.
 *
 * The hook is inline JavaScript so that it loads the same way whether the
 * harness runs compiled or from TypeScript source.
 */
import { register } from 'node:module';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ext = extname(fileURLToPath(import.meta.url));
const hooks = `
let to;
export function initialize(data) { to = data.to; }
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  return /\\/src\\/authn\\/request-authenticator\\.(js|ts)$/.test(resolved.url) ? { url: to, shortCircuit: true } : resolved;
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`, import.meta.url, {
  data: { to: new URL(`./noauth-authenticator${ext}`, import.meta.url).href },
});
