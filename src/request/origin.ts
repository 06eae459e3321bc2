/** The origin of a URL, normalised as browsers write it (lower-case host, no default port); undefined when it is not one, or `null`. */
export function originOf(url: string | undefined): string | undefined {
  if (url === undefined || !URL.canParse(url)) return undefined;
  const origin = new URL(url).origin;
  return origin === 'null' ? undefined : origin;
}
