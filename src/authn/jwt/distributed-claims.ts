/**
 * Distributed claims (OpenID Connect Core 1.0, 5.6.2) as kube-apiserver
 * resolves them for the groups claim (k8s.io/apiserver
 * plugin/pkg/authenticator/token/oidc/oidc.go, claimResolver.expand and
 * resolve, getClaimJWT): only when `claimMappings.groups.claim` is set and the
 * token lacks that claim, from `_claim_names` and `_claim_sources` read with
 * their exact names; the endpoint answers with a JWT that must pass the same
 * checks as a token of the issuer, and its claim of that name becomes the
 * token's.
 */
import { request, type Dispatcher } from 'undici';
import { goString, goStringStruct } from './go-json.js';
import { boundedText } from './http.js';

/** What the token says of the claim: nothing to fetch, a malformed reference (refuse), or where to fetch it. */
export type DistributedSource = 'none' | 'invalid' | { readonly endpoint: string; readonly accessToken: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Where `claim` is distributed to, as expand decides: the claim present, no
 * `_claim_names`, no name for the claim, or a source without endpoint (an
 * aggregated claim) is `none`; names or sources that json.Unmarshal would
 * refuse, names without `_claim_sources`, or a source missing from them is `invalid`.
 */
export function distributedSource(claims: Readonly<Record<string, unknown>>, claim: string): DistributedSource {
  if (Object.hasOwn(claims, claim) || !Object.hasOwn(claims, '_claim_names')) return 'none';
  // json.Unmarshal into map[string]string: null is an empty map, a null value "".
  const names = claims._claim_names;
  if (names !== null && (!isObject(names) || Object.values(names).some((s) => goString(s) === undefined))) return 'invalid';
  if (!Object.hasOwn(claims, '_claim_sources')) return 'invalid';
  // json.Unmarshal into map[string]endpoint: struct fields matched case-insensitively;
  // kube's endpoint also has a JWT string field (aggregated claims, unused), so a
  // non-string there fails too.
  const sources = claims._claim_sources;
  if (sources !== null && !isObject(sources)) return 'invalid';
  const endpoints = new Map<string, { endpoint: string; accessToken: string }>();
  for (const [name, source] of Object.entries(sources ?? {})) {
    const decoded = goStringStruct(source, ['endpoint', 'access_token', 'jwt']);
    if (!decoded) return 'invalid';
    endpoints.set(name, { endpoint: decoded.endpoint, accessToken: decoded.access_token });
  }
  const nameMap = names ?? {};
  if (!Object.hasOwn(nameMap, claim)) return 'none';
  const source = endpoints.get(goString(nameMap[claim]) ?? '');
  if (!source) return 'invalid';
  return source.endpoint === '' ? 'none' : source;
}

/** The endpoint's answer is one JWT; refuse to buffer a runaway body. */
const MAX_BODY_BYTES = 64 * 1024;
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * getClaimJWT: GET the endpoint, with `Authorization: Bearer <access_token>`
 * when there is one; any status outside 200–226 is an error; the body, as it
 * is, is the JWT.
 */
export async function fetchClaimJwt(source: { readonly endpoint: string; readonly accessToken: string }, dispatcher: Dispatcher, signal: AbortSignal): Promise<string> {
  const res = await request(source.endpoint, {
    dispatcher,
    headers: source.accessToken === '' ? {} : { authorization: `Bearer ${source.accessToken}` },
    signal: AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
  });
  if (res.statusCode < 200 || res.statusCode > 226) {
    await res.body.dump();
    throw new Error(`distributed claim endpoint answered HTTP ${res.statusCode}`);
  }
  return boundedText(res.body, MAX_BODY_BYTES, 'distributed claim endpoint answer');
}
