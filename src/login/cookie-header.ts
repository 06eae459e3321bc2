/**
 * Reading our own cookies from a request's Cookie header, every occurrence of
 * a name rather than the first: a sibling subdomain can plant a second cookie
 * of the same name for the parent domain ("cookie tossing"), and a browser
 * then sends both. Whichever comes first must not win; the caller refuses.
 */

/**
 * Every value the Cookie header gives `name`, in order. Names compare exactly,
 * after trimming the blanks around them, as express-session's parser does, so
 * this sees what the session middleware would.
 *
 * @example
 * cookieValues('a=1; s=x; b=2; s=y', 's') // ['x', 'y']
 */
export function cookieValues(header: string | undefined, name: string): string[] {
  if (!header) return [];
  const values: string[] = [];
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === name) values.push(pair.slice(eq + 1).trim());
  }
  return values;
}
