import type { Middleware } from 'koa';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { AppError } from '../../../src/errors.ts';

/**
 * Every Management API call carries a JWT access token minted by our own
 * token endpoint (client_credentials) for the Management API resource, with
 * the `all` scope. Signature, issuer, audience, expiry and type are checked.
 */
export function requireManagementToken(options: {
  issuer: string;
  audience: string;
  scope: string;
  jwks: () => JSONWebKeySet;
  /** Whether the client still has access: taking access away (or deleting the app) takes effect at once. */
  clientHasAccess: (clientId: string) => Promise<boolean>;
}): Middleware {
  let keySet = createLocalJWKSet(options.jwks());
  let keySource = options.jwks();
  return async (ctx, next) => {
    const header = ctx.get('Authorization');
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header);
    if (!match?.[1]) throw new AppError('UNAUTHORIZED');
    const current = options.jwks();
    if (current !== keySource) {
      keySource = current;
      keySet = createLocalJWKSet(current);
    }
    let scopes: string[];
    try {
      const { payload } = await jwtVerify(match[1], keySet, {
        issuer: options.issuer,
        audience: options.audience,
        typ: 'at+jwt',
        algorithms: ['ES256', 'RS256'],
      });
      scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
      ctx.state.managementClientId = payload.client_id;
    } catch {
      throw new AppError('UNAUTHORIZED');
    }
    if (!scopes.includes(options.scope)) throw new AppError('FORBIDDEN');
    const clientId = ctx.state.managementClientId;
    if (typeof clientId !== 'string' || !(await options.clientHasAccess(clientId))) {
      throw new AppError('FORBIDDEN', 'The application behind this token no longer has Management API access.');
    }
    await next();
  };
}
