import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import type { Context } from 'koa';
import { AppError } from '../errors.ts';

/** How many verified tokens each verifier remembers (a backend reuses one token for its lifetime). */
const VERIFIED_TOKENS_KEPT = 1_000;

/**
 * Checks the `Authorization: Bearer` JWT access token our own token endpoint
 * minted for one resource: signature (the current JWKS, re-read when keys
 * rotate), issuer, audience, expiry and `typ: at+jwt`. Answers the payload;
 * throws UNAUTHORIZED for no or a bad token. The caller checks the scope
 * (requireScope) once it has noted who called.
 *
 * A token that verified is remembered (by its exact text, at most
 * VERIFIED_TOKENS_KEPT, for as long as it is valid): a backend sends the same
 * token with every call, and the signature check is most of what a mint
 * costs here. A remembered token still stops at its `exp`, and every token is
 * checked again once the key set changes (a rotation or a retirement).
 */
export function createAccessTokenVerifier(options: { issuer: string; audience: string; jwks: () => JSONWebKeySet; now?: () => number }) {
  const now = options.now ?? Date.now;
  let keySource = options.jwks();
  let keySet = createLocalJWKSet(keySource);
  const verified = new Map<string, JWTPayload>();
  const stillValid = (payload: JWTPayload, seconds: number) =>
    typeof payload.exp === 'number' && payload.exp > seconds && (payload.nbf === undefined || payload.nbf <= seconds);

  return async (ctx: Context): Promise<JWTPayload> => {
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(ctx.get('Authorization'));
    const token = match?.[1];
    if (!token) throw new AppError('UNAUTHORIZED');
    if (options.jwks() !== keySource) {
      keySource = options.jwks();
      keySet = createLocalJWKSet(keySource);
      verified.clear();
    }
    const currentDate = new Date(now());
    const seconds = Math.floor(currentDate.getTime() / 1000);
    const known = verified.get(token);
    if (known && stillValid(known, seconds)) return known;
    if (known) verified.delete(token);
    try {
      const { payload } = await jwtVerify(token, keySet, {
        issuer: options.issuer,
        audience: options.audience,
        typ: 'at+jwt',
        algorithms: ['ES256', 'RS256'],
        currentDate,
      });
      // Only tokens with an expiry are remembered (ours always have one); frozen, as every caller gets the same object.
      if (stillValid(payload, seconds)) {
        if (verified.size >= VERIFIED_TOKENS_KEPT) verified.delete(verified.keys().next().value as string);
        verified.set(token, Object.freeze(payload));
      }
      return payload;
    } catch {
      throw new AppError('UNAUTHORIZED');
    }
  };
}

/** FORBIDDEN unless the token's space-separated `scope` holds `scope`. */
export function requireScope(payload: JWTPayload, scope: string): void {
  const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
  if (!scopes.includes(scope)) throw new AppError('FORBIDDEN');
}
