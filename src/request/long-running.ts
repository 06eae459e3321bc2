/**
 * Which requests are long-running, as kube-apiserver classifies them
 * (--long-running-request-regexp plus watch): these stream for minutes or
 * hours and must never be cut by the timeouts meant for short requests.
 */
export type RequestKind = 'short' | 'watch' | 'follow' | 'proxy' | 'upgrade';

const STREAMING_SUBRESOURCE = /\/(exec|attach|portforward|proxy)$/;

export function requestKind(path: string, query: URLSearchParams, isUpgrade: boolean): RequestKind {
  if (isUpgrade) return 'upgrade';
  const watch = query.get('watch');
  if (watch === 'true' || watch === '1' || /\/watch\//.test(path)) return 'watch';
  if (path.endsWith('/log') && (query.get('follow') === 'true' || query.get('follow') === '1')) return 'follow';
  if (STREAMING_SUBRESOURCE.test(path) || /\/proxy\//.test(path)) return 'proxy';
  return 'short';
}
