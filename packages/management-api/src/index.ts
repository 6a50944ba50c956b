import Router from '@koa/router';
import type { JSONWebKeySet } from 'jose';
import type { ApplicationService } from '../../../src/applications/index.ts';
import type { BanService } from '../../../src/bans/index.ts';
import type { InvitationService } from '../../../src/invitations/index.ts';
import type { Mailer } from '../../../src/mail/index.ts';
import type { KeyService } from '../../../src/oidc/key-service.ts';
import type { OrganizationRepository, OrganizationService } from '../../../src/organizations/index.ts';
import type { RateLimits } from '../../../src/ratelimit/index.ts';
import type { TokenService } from '../../../src/tokens/index.ts';
import type { UserRepository } from '../../../src/users/index.ts';
import type { UserService } from '../../../src/users/service.ts';
import { requireManagementToken } from './auth.ts';
import { buildOpenApiDocument } from './openapi.ts';
import type { SettingsService } from '../../../src/settings/index.ts';
import { registerApplicationRoutes } from './routes/applications.ts';
import { registerBannedIpRoutes } from './routes/banned-ips.ts';
import { registerConfigRoutes } from './routes/configs.ts';
import { registerInvitationRoutes } from './routes/invitations.ts';
import { registerOneTimeTokenRoutes } from './routes/one-time-tokens.ts';
import { registerOrganizationRoutes } from './routes/organizations.ts';
import { registerSignInExperienceRoutes } from './routes/sign-in-experience.ts';
import { registerUserRoutes } from './routes/users.ts';

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
  userService: UserService;
  organizations: OrganizationRepository;
  organizationService: OrganizationService;
  mailer: Mailer;
  invitations: InvitationService;
  keys: KeyService;
  settings: SettingsService;
  limits: RateLimits;
  bans: BanService;
};

/**
 * The Management API under /api: machine-to-machine clients with the `all`
 * scope only. One registrar per resource declares its guarded routes; the
 * OpenAPI document is generated from those declarations.
 */
export function createManagementApiRouter(deps: ManagementApiDeps): Router {
  const router = new Router({ prefix: '/api' });
  let document: Record<string, unknown> | undefined;
  router.get('/openapi.json', (ctx) => {
    // Built on first request, when every registrar below has added its routes.
    document ??= buildOpenApiDocument(router, { serverUrl: deps.baseUrl });
    ctx.body = document;
  });
  router.use(
    requireManagementToken({
      issuer: deps.issuer,
      audience: deps.resource,
      scope: deps.scope,
      jwks: deps.jwks,
      clientHasAccess: async (clientId) => (await deps.applications.get(clientId))?.managementApiAccess === true,
    }),
  );
  registerOneTimeTokenRoutes(router, deps);
  registerApplicationRoutes(router, deps);
  registerUserRoutes(router, deps);
  registerOrganizationRoutes(router, deps);
  registerInvitationRoutes(router, deps);
  registerConfigRoutes(router, deps);
  registerSignInExperienceRoutes(router, deps);
  registerBannedIpRoutes(router, deps);
  return router;
}
