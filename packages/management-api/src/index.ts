import type Router from '@koa/router';
import { createRouter } from '../../../src/http/routing.ts';
import type { JSONWebKeySet } from 'jose';
import type { Middleware } from 'koa';
import type { ApplicationService } from '../../../src/applications/index.ts';
import type { BanService } from '../../../src/bans/index.ts';
import type { AuditLog } from '../../../src/audit/index.ts';
import type { EventBus } from '../../../src/events/index.ts';
import { routeOf } from '../../../src/http/middleware.ts';
import type { HookService } from '../../../src/hooks/index.ts';
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
import type { MfaService } from '../../../src/mfa/index.ts';
import type { SettingsService } from '../../../src/settings/index.ts';
import { registerApplicationRoutes } from './routes/applications.ts';
import { registerBannedIpRoutes } from './routes/banned-ips.ts';
import { registerAuditRoutes } from './routes/audit.ts';
import { registerHookRoutes } from './routes/hooks.ts';
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
  mfa: MfaService;
  limits: RateLimits;
  bans: BanService;
  events: EventBus;
  audit: AuditLog;
  hooks: HookService;
};

/**
 * The Management API under /api: machine-to-machine clients with the `all`
 * scope only. One registrar per resource declares its guarded routes; the
 * OpenAPI document is generated from those declarations.
 */
export function createManagementApiRouter(deps: ManagementApiDeps): Router {
  const router = createRouter({ prefix: '/api' });
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
  router.use(auditWrites(deps.events));
  registerOneTimeTokenRoutes(router, deps);
  registerApplicationRoutes(router, deps);
  registerUserRoutes(router, deps);
  registerOrganizationRoutes(router, deps);
  registerInvitationRoutes(router, deps);
  registerConfigRoutes(router, deps);
  registerSignInExperienceRoutes(router, deps);
  registerBannedIpRoutes(router, deps);
  registerAuditRoutes(router, deps);
  registerHookRoutes(router, deps);
  return router;
}

const readOnly = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * After the token check: every write (any method but GET, HEAD, OPTIONS) is
 * published as `ManagementApi.Write` with the client, the route and the
 * final status, refused ones included. Events published by the services
 * during the request carry the client as their application.
 */
export function auditWrites(events: EventBus): Middleware {
  return async (ctx, next) => {
    const clientId = ctx.state.managementClientId as string;
    events.annotate({ clientId });
    if (readOnly.has(ctx.method)) return next();
    let status = 500;
    try {
      await next();
      status = ctx.status;
    } catch (error) {
      const thrown = (error as { status?: unknown }).status;
      status = typeof thrown === 'number' ? thrown : 500;
      throw error;
    } finally {
      await events.publish('ManagementApi.Write', { clientId, applicationId: clientId, method: ctx.method, path: ctx.path, route: routeOf(ctx), status });
    }
  };
}
