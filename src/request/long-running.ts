/**
 * Which requests are long-running, as kube-apiserver classifies them
 * (BasicLongRunningRequestCheck with the verbs watch and proxy and the
 * subresources attach, exec, proxy, log and portforward): these stream for
 * minutes or hours and must never be cut by the timeouts meant for short
 * requests, and they alone become HTTP/2 streams upstream. Where we read a
 * request differently from kube, a client chooses: a watch the proxy took for
 * a short request held a connection of the short pool for as long as it liked.
 */
export type RequestKind = 'short' | 'watch' | 'log' | 'proxy' | 'upgrade';

const STREAMING_SUBRESOURCE = /\/(exec|attach|portforward|proxy)$/;

export function requestKind(rawPath: string, query: URLSearchParams, isUpgrade: boolean): RequestKind {
  if (isUpgrade) return 'upgrade';
  const path = asKubeReads(rawPath);
  if (isWatch(query) || /\/watch\//.test(path)) return 'watch';
  // Every log, not only ?follow=true: kube lists the subresource, whatever the query.
  if (path.endsWith('/log')) return 'log';
  if (STREAMING_SUBRESOURCE.test(path) || /\/proxy\//.test(path)) return 'proxy';
  return 'short';
}

/**
 * The path as kube-apiserver's RequestInfoFactory reads it: percent-decoded (Go's
 * req.URL.Path, `%2F` included) and without trailing slashes. The raw one let `%6Cog`,
 * `p%2Flog` or `log/` pass for short requests that kube ran as long-running.
 */
function asKubeReads(path: string): string {
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    // Not valid percent-encoding: kube answers 400 before it classifies; the raw path will do.
  }
  return decoded.replace(/\/+$/, '');
}

/** kube's query boolean (Convert_Slice_string_To_bool): any value but "0" or "false" (any case), the empty one included. */
function isWatch(query: URLSearchParams): boolean {
  const value = query.get('watch');
  return value !== null && value !== '0' && value.toLowerCase() !== 'false';
}
