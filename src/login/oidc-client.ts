/**
 * The proxy as an OpenID Connect client (openid-client, a certified relying
 * party): discovery, the authorization-code + PKCE login, refresh, logout.
 */
import * as oidc from 'openid-client';
import { fetch as undiciFetch, type Agent } from 'undici';
import type { SessionConfig } from '../config/schema.js';

export type OidcClient = oidc.Configuration;

/** Discovers the provider. */
export async function discoverClient(config: SessionConfig['oidc'], clientSecret: string | undefined, dispatcher: Agent): Promise<OidcClient> {
  const auth = clientSecret ? oidc.ClientSecretBasic(clientSecret) : oidc.None();
  const client = await oidc.discovery(new URL(config.issuerURL), config.clientID, undefined, auth, {
    [oidc.customFetch]: (url, options) => undiciFetch(url, { ...options, dispatcher }),
    timeout: 10,
    // The issuer URL may be loopback http in development; the schema already refuses it elsewhere.
    execute: new URL(config.issuerURL).protocol === 'http:' ? [oidc.allowInsecureRequests] : [],
  });
  return client;
}

/** What the login must remember between /start and /callback. */
export interface PendingLogin {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
  readonly returnTo: string;
}

/** Starts a login whose callback is `redirectURL` (the configured one, or a foreign gateway host's own). */
export async function startLogin(client: OidcClient, config: SessionConfig['oidc'], returnTo: string, redirectURL: string): Promise<{ url: URL; pending: PendingLogin }> {
  const pending = {
    state: oidc.randomState(),
    nonce: oidc.randomNonce(),
    codeVerifier: oidc.randomPKCECodeVerifier(),
    returnTo,
  };
  const url = oidc.buildAuthorizationUrl(client, {
    ...config.extraAuthParams,
    redirect_uri: redirectURL,
    scope: config.scopes.join(' '),
    response_type: 'code',
    code_challenge: await oidc.calculatePKCECodeChallenge(pending.codeVerifier),
    code_challenge_method: 'S256',
    state: pending.state,
    nonce: pending.nonce,
  });
  return { url, pending };
}

export interface LoginTokens {
  readonly idToken: string;
  /** The provider's access token, for routes with passAccessToken. */
  readonly accessToken?: string;
  readonly refreshToken?: string;
  /** The id_token's exp, epoch ms. */
  readonly expiresAt: number;
  readonly sub: string;
  /** The provider's session id, for back-channel logout. */
  readonly sid?: string;
}

/**
 * Exchanges the code: openid-client checks state, PKCE and the id_token
 * (signature, iss, aud, nonce). `callbackSearch` is the callback's query string;
 * `redirectURL` the one the login started with.
 */
export async function finishLogin(client: OidcClient, redirectURL: string, callbackSearch: string, pending: PendingLogin): Promise<LoginTokens> {
  const current = new URL(redirectURL);
  current.search = callbackSearch;
  const tokens = await oidc.authorizationCodeGrant(client, current, {
    pkceCodeVerifier: pending.codeVerifier,
    expectedState: pending.state,
    expectedNonce: pending.nonce,
    idTokenExpected: true,
  });
  return toLoginTokens(tokens);
}

export async function refresh(client: OidcClient, refreshToken: string): Promise<LoginTokens> {
  const tokens = await oidc.refreshTokenGrant(client, refreshToken);
  const result = toLoginTokens(tokens);
  // Providers that do not rotate refresh tokens send none back: keep the old one.
  return result.refreshToken ? result : { ...result, refreshToken };
}

/** The provider's logout page (RP-initiated logout), when it has one. */
export function endSessionUrl(client: OidcClient, idToken: string | undefined): URL | undefined {
  if (!client.serverMetadata().end_session_endpoint) return undefined;
  return oidc.buildEndSessionUrl(client, { ...(idToken ? { id_token_hint: idToken } : {}), client_id: client.clientMetadata().client_id });
}

function toLoginTokens(tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers): LoginTokens {
  const claims = tokens.claims();
  if (!tokens.id_token || !claims) throw new Error('the provider returned no id_token');
  return {
    idToken: tokens.id_token,
    ...(tokens.access_token ? { accessToken: tokens.access_token } : {}),
    ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
    expiresAt: claims.exp * 1000,
    sub: claims.sub,
    ...(typeof claims.sid === 'string' ? { sid: claims.sid } : {}),
  };
}
