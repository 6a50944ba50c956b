import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import type { Context } from 'koa';
import { AppError } from '../errors.ts';

/**
 * Checks the `Authorization: Bearer` JWT access token our own token endpoint
 * minted for one resource: signature (the current JWKS, re-read when keys
 * rotate), issuer, audience, expiry and `typ: at+jwt`. Answers the payload;
 * throws UNAUTHORIZED for no or a bad token. The caller checks the scope
 * (requireScope) once it has noted who called.
 */
export function createAccessTokenVerifier(options: { issuer: string; audience: string; jwks: () => JSONWebKeySet }) {
  let keySource = options.jwks();
  let keySet = createLocalJWKSet(keySource);
  return async (ctx: Context): Promise<JWTPayload> => {
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(ctx.get('Authorization'));
    if (!match?.[1]) throw new AppError('UNAUTHORIZED');
    if (options.jwks() !== keySource) {
      keySource = options.jwks();
      keySet = createLocalJWKSet(keySource);
    }
    try {
      const { payload } = await jwtVerify(match[1], keySet, {
        issuer: options.issuer,
        audience: options.audience,
        typ: 'at+jwt',
        algorithms: ['ES256', 'RS256'],
      });
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
