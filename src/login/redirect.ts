/**
 * Where a login may send the browser back to (`rd=`): a same-origin relative
 * path, or an absolute https URL whose host is on the allow-list. Everything
 * else falls back to "/", so the login can never be an open redirect.
 */

/**
 * Returns a safe target for `rd`, or "/" when it is not one. `alsoAllowed` admits
 * more hosts (the gateway's route hosts under the cookie domain).
 */
export function safeRedirect(rd: unknown, allowedHosts: readonly string[], alsoAllowed: (host: string) => boolean = () => false): string {
  if (typeof rd !== 'string' || rd.length === 0 || rd.length > 4096) return '/';
  // Browsers treat "\" as "/" and drop tabs and newlines in URLs: "/\evil.com" and
  // "/\t/evil.com" would both leave the site. Refuse anything of the kind outright.
  // eslint-disable-next-line no-control-regex -- matching control characters is the point: browsers drop them from URLs
  if (/[\\\u0000-\u001f\u007f]/.test(rd)) return '/';
  if (rd.startsWith('/')) {
    // "//evil.com" is protocol-relative: another host.
    if (rd.startsWith('//')) return '/';
    // Parsed against a placeholder origin, a same-origin path must stay on it.
    const url = new URL(rd, 'https://same-origin.invalid');
    if (url.origin !== 'https://same-origin.invalid') return '/';
    // Resolving dot segments can make a path start with "//" again ("/.//evil.com"): another host.
    const target = `${url.pathname}${url.search}${url.hash}`;
    return target.startsWith('//') ? '/' : target;
  }
  if (!URL.canParse(rd)) return '/';
  const url = new URL(rd);
  if (url.protocol !== 'https:' || url.username || url.password) return '/';
  return allowedHosts.includes(url.host) || allowedHosts.includes(url.hostname) || alsoAllowed(url.host) ? url.href : '/';
}
