/**
 * Bearer tokens for the benchmark, signed with the dev issuer's own private
 * keys (it makes an RS256 and an ES256 key), so the proxy verifies them
 * against the issuer's real JWKS exactly as it would an id_token.
 */
import { writeFileSync } from 'node:fs';
import { SignJWT, importJWK, type JWK } from 'jose';

export type Alg = 'RS256' | 'ES256';

/** Mints `count` distinct tokens (distinct `sub`, `jti`-free like an id_token) valid for `ttlSeconds`. */
export async function mintTokens(
  issuer: { readonly url: string; readonly jwks: { readonly keys: readonly JWK[] } },
  alg: Alg,
  count: number,
  ttlSeconds = 3600,
): Promise<string[]> {
  const jwk = issuer.jwks.keys.find((k) => k.alg === alg);
  if (!jwk?.kid) throw new Error(`the dev issuer has no ${alg} key with a kid`);
  const key = await importJWK(jwk, alg);
  const now = Math.floor(Date.now() / 1000);
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    tokens.push(
      await new SignJWT({
        email: count === 1 ? 'bench@example.com' : `bench-${i}@example.com`,
        email_verified: true,
        groups: ['developers', 'infrastructure'],
      })
        .setProtectedHeader({ alg, kid: jwk.kid, typ: 'JWT' })
        .setIssuer(issuer.url)
        .setAudience('kubernetes')
        .setSubject(count === 1 ? 'bench' : `bench-${i}`)
        .setIssuedAt(now)
        .setExpirationTime(now + ttlSeconds)
        .sign(key),
    );
  }
  return tokens;
}

/** Writes tokens as the JSON array the load generator reads. */
export function writeTokens(file: string, tokens: readonly string[]): string {
  writeFileSync(file, JSON.stringify(tokens));
  return file;
}
