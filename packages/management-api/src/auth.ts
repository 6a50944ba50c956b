import type { Middleware } from 'koa';
import type { JSONWebKeySet } from 'jose';
import { AppError } from '../../../src/errors.ts';
import { createAccessTokenVerifier, requireScope } from '../../../src/http/access-token.ts';

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
  const verify = createAccessTokenVerifier(options);
  return async (ctx, next) => {
    const payload = await verify(ctx);
    ctx.state.managementClientId = payload.client_id;
    requireScope(payload, options.scope);
    const clientId = ctx.state.managementClientId;
    if (typeof clientId !== 'string' || !(await options.clientHasAccess(clientId))) {
      throw new AppError('FORBIDDEN', 'The application behind this token no longer has Management API access.');
    }
    await next();
  };
}
