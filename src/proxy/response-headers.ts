/**
 * What the client sees of the upstream's response head. Hop-by-hop headers
 * describe the upstream connection, not the response (RFC 9110 §7.6.1), and
 * an application behind the gateway must not set the proxy's own cookies: the
 * browser sees one origin, so a planted session cookie would replace the
 * person's session with one the application chose. Shared by forward.ts and
 * the upgrade tunnel (on a 101 or a refusal).
 */
import { foldName } from './header-names.js';
import { connectionValues, isHopByHop, namesListed } from './hop-by-hop.js';

/** On a 101 these are the switch itself, which the client must see. */
const SWITCH = new Set(['connection', 'upgrade']);

/**
 * The upstream's response header lines the client may see, in their order.
 *
 * @param status - the upstream's status; a 101 keeps its Connection and Upgrade
 * @param rawHeaders - the upstream's header lines as a flat `[name, value, …]` list, one value each
 * @param ownsCookie - whether a cookie name is one of the proxy's own (`HeaderRules.ownsCookie`)
 * @returns the lines to relay, in the same flat form
 *
 * @example
 * clientResponseHeaders(200, ['Set-Cookie', '__Host-kfp-session=x', 'Set-Cookie', 'app=1'], (n) => n === '__Host-kfp-session');
 * // → ['Set-Cookie', 'app=1']
 */
export function clientResponseHeaders(status: number, rawHeaders: readonly string[], ownsCookie: (name: string) => boolean): string[] {
  const keep = responseHeaderFilter(status, connectionValues(rawHeaders), ownsCookie);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (keep(rawHeaders[i].toLowerCase(), rawHeaders[i + 1])) out.push(rawHeaders[i], rawHeaders[i + 1]);
  }
  return out;
}

/**
 * The same rule one line at a time, for callers that hold the head in another
 * shape (forward.ts gets undici's parsed object and must not rebuild it).
 *
 * @param connection - the response's Connection value(s), which name more hop-by-hop headers
 * @returns whether the client may see a line, given its lower-cased name and its value
 */
export function responseHeaderFilter(
  status: number,
  connection: string | readonly string[] | undefined,
  ownsCookie: (name: string) => boolean,
): (lowerName: string, value: string) => boolean {
  const listed = namesListed([connection ?? []].flat());
  return (lowerName, value) => {
    // Connection names are read folded (hop-by-hop.ts), so the name is compared folded too.
    if (!(status === 101 && SWITCH.has(lowerName)) && isHopByHop(foldName(lowerName), listed)) return false;
    return !(lowerName === 'set-cookie' && ownsCookie(cookieNameSentBack(value)));
  };
}

/**
 * The name a server reads back the cookie a Set-Cookie value stores under
 * (RFC 6265bis §5.6). A browser trims the name; a cookie with an empty name is
 * sent back as its value alone, so `=__Host-kfp-session=x` returns as
 * `__Host-kfp-session=x`.
 */
function cookieNameSentBack(setCookie: string): string {
  const pair = setCookie.split(';', 1)[0];
  const eq = pair.indexOf('=');
  const name = eq < 0 ? '' : pair.slice(0, eq).trim();
  if (name !== '') return name;
  const sent = pair.slice(eq + 1).trim();
  const inner = sent.indexOf('=');
  return (inner < 0 ? sent : sent.slice(0, inner)).trim();
}
