/**
 * OpenID Connect discovery, as kube-apiserver does it (go-oidc NewProvider):
 * one GET of the provider metadata, whose `issuer` must be exactly the
 * configured issuer URL.
 */
import type { Dispatcher } from 'undici';
import type { JwtAuthenticatorConfig } from '../../config/schema.js';
import { getJson } from './http.js';

/** What we need from the provider metadata. */
export interface ProviderMetadata {
  readonly jwksURI: string;
}

/** Where the metadata lives: `issuer.discoveryURL`, else `<issuer.url without trailing slash>/.well-known/openid-configuration`. */
export function discoveryURL(issuer: JwtAuthenticatorConfig['issuer']): string {
  return issuer.discoveryURL ?? `${issuer.url.replace(/\/$/, '')}/.well-known/openid-configuration`;
}

/**
 * Fetches the provider metadata. Rejects when the document's `issuer` differs
 * from `issuer.url` in any way (a trailing slash included), also when the
 * document came from `discoveryURL`: kube only redirects where the document
 * is fetched from, never what it must say. That is what stops a token signed
 * by another tenant of the same provider from passing as ours.
 */
export async function discover(
  issuer: JwtAuthenticatorConfig['issuer'],
  dispatcher: Dispatcher,
  signal: AbortSignal,
): Promise<ProviderMetadata> {
  const url = discoveryURL(issuer);
  const doc = await getJson(url, dispatcher, signal);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error(`${url}: not a JSON object`);
  const { issuer: named, jwks_uri: jwksURI } = doc as Record<string, unknown>;
  if (named !== issuer.url) {
    throw new Error(`${url}: the provider calls itself ${JSON.stringify(named)}, but issuer.url is ${JSON.stringify(issuer.url)}; they must match exactly`);
  }
  if (typeof jwksURI !== 'string' || !URL.canParse(jwksURI) || !/^https?:$/.test(new URL(jwksURI).protocol)) {
    throw new Error(`${url}: jwks_uri is missing or not an http(s) URL`);
  }
  return { jwksURI };
}
