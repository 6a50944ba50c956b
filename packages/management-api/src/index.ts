import Router from '@koa/router';
import type { JSONWebKeySet } from 'jose';
import type { ApplicationService } from '../../../src/applications/index.ts';
import type { Mailer } from '../../../src/mail/index.ts';
import type { OrganizationRepository } from '../../../src/organizations/index.ts';
import type { TokenService } from '../../../src/tokens/index.ts';
import type { UserRepository } from '../../../src/users/index.ts';
import { requireManagementToken } from './auth.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { registerApplicationRoutes } from './routes/applications.ts';
import { registerOneTimeTokenRoutes } from './routes/one-time-tokens.ts';

export type ManagementApiDeps = {
  baseUrl: string;
  issuer: string;
  resource: string;
  scope: string;
  jwks: () => JSONWebKeySet;
  clock: () => Date;
  tokens: TokenService;
  applications: ApplicationService;
  users: UserRepository;
  organizations: OrganizationRepository;
  mailer: Mailer;
};

/**
 * The Management API under /api: machine-to-machine clients with the `all`
 * scope only. One registrar per resource declares its guarded routes; the
 * OpenAPI document is generated from those declarations.
 */
export function createManagementApiRouter(deps: ManagementApiDeps): Router {
  const router = new Router({ prefix: '/api' });
  router.get('/openapi.json', (ctx) => {
    ctx.body = buildOpenApiDocument(router, { serverUrl: deps.baseUrl });
  });
  router.use(requireManagementToken({ issuer: deps.issuer, audience: deps.resource, scope: deps.scope, jwks: deps.jwks }));
  registerOneTimeTokenRoutes(router, deps);
  registerApplicationRoutes(router, deps);
  return router;
}
