/**
 * Organization tokens, as Logto SDKs ask for them (`getOrganizationToken(orgId)`):
 *
 *   POST /oidc/token  grant_type=refresh_token & refresh_token=… & organization_id=ORG [& scope=…]
 *
 * answers a short-lived JWT access token for that organization (`aud` =
 * `urn:logto:organization:ORG`, claim `organization_id`) when the refresh
 * token's grant holds the organizations scope and the user is still a member.
 *
 * oidc-provider keeps one handler per grant type and has no hook inside its
 * refresh_token grant, so Sesame re-registers `refresh_token` with a handler
 * that looks at `organization_id` first; without it the request goes, as is,
 * to oidc-provider's own handler (rotation and reuse detection included).
 *
 * Private API: reaching that original handler, and the parameter lists it was
 * registered with, needs oidc-provider's per-instance internals, read through
 * its `lib/helpers/weak_cache.js`. The public `registerGrantType` only adds or
 * replaces handlers, it cannot hand back the one it replaces. This is the only
 * private use and it stays in this file; `installOrganizationTokens` throws at
 * startup (not per request) if an oidc-provider upgrade moves those internals.
 * Everything else here (models, ResourceServer, errors) is public API.
 */
import type Provider from 'oidc-provider';
import { errors, type KoaContextWithOIDC, type TokenEndpointGrantContext } from 'oidc-provider';
// @ts-expect-error -- private oidc-provider module without type declarations; see the comment above.
import providerInternals from 'oidc-provider/lib/helpers/weak_cache.js';
import type { OrganizationRepository } from '../organizations/index.ts';
import type { UserRepository } from '../users/index.ts';

export const ORGANIZATIONS_SCOPE = 'urn:logto:scope:organizations';
export const ORGANIZATION_ROLES_SCOPE = 'urn:logto:scope:organization_roles';
/** The organizations scope family: what the organizations resource and organization tokens can carry. */
export const ORGANIZATION_SCOPES: readonly string[] = [ORGANIZATIONS_SCOPE, ORGANIZATION_ROLES_SCOPE];
/** Logto SDKs send this resource indicator with the organizations scope. */
export const ORGANIZATIONS_RESOURCE = 'urn:logto:resource:organizations';
const ORGANIZATION_AUDIENCE_PREFIX = 'urn:logto:organization:';
/** JWT access tokens cannot be revoked: keep them short. */
export const ORGANIZATION_TOKEN_TTL = 3600;

export const organizationAudience = (organizationId: string) => `${ORGANIZATION_AUDIENCE_PREFIX}${organizationId}`;

/** The resource server for organization JWTs (`urn:logto:resource:organizations` or one organization). */
export const organizationResourceServer = (audience: string) => ({
  scope: ORGANIZATION_SCOPES.join(' '),
  audience,
  accessTokenTTL: ORGANIZATION_TOKEN_TTL,
  accessTokenFormat: 'jwt' as const,
  jwt: { sign: { alg: 'ES256' as const } },
});

/** For `extraTokenClaims`: the `organization_id` claim of an organization token. */
export function organizationTokenClaims(token: { aud?: string | string[] | undefined }): { organization_id: string } | undefined {
  const { aud } = token;
  return typeof aud === 'string' && aud.startsWith(ORGANIZATION_AUDIENCE_PREFIX)
    ? { organization_id: aud.slice(ORGANIZATION_AUDIENCE_PREFIX.length) }
    : undefined;
}

type GrantHandler = (ctx: KoaContextWithOIDC) => Promise<void>;
type RefreshGrantContext = TokenEndpointGrantContext<{ refresh_token?: string; organization_id?: string }>;
type ProviderInternals = {
  grantTypeHandlers?: Map<string, GrantHandler>;
  grantTypeParams?: Map<string | undefined, Set<string>>;
  grantTypeDupes?: Map<string, Set<string>>;
};

export type OrganizationTokenDeps = {
  organizations: Pick<OrganizationRepository, 'isMember'>;
  users: Pick<UserRepository, 'findById'>;
};

/** Replaces the refresh_token grant with one that also answers `organization_id` requests. */
export function installOrganizationTokens(provider: Provider, deps: OrganizationTokenDeps): void {
  const internals = (providerInternals as (provider: Provider) => ProviderInternals | undefined)(provider);
  const builtIn = internals?.grantTypeHandlers?.get('refresh_token');
  const parameters = internals?.grantTypeParams?.get('refresh_token');
  if (!builtIn || !parameters) {
    throw new Error("oidc-provider's refresh_token grant was not found in its internals: see src/oidc/organization-token.ts");
  }
  const issueOrganizationToken = createOrganizationTokenHandler(deps, builtIn);
  provider.registerGrantType<{ organization_id?: string }>(
    'refresh_token',
    async (ctx) => {
      // Params keep empty values as undefined: `organization_id=` is an ordinary refresh, as in Logto.
      const organizationId = ctx.oidc.params.organization_id;
      if (typeof organizationId === 'string') await issueOrganizationToken(ctx, organizationId);
      else await builtIn(ctx);
    },
    [...parameters, 'organization_id'],
    internals?.grantTypeDupes?.get('refresh_token'),
  );
}

/**
 * The refresh token is not rotated by an organization token request: only
 * ordinary refreshes rotate it. An app asks for tokens of several
 * organizations at once (and for its own access token); with rotation, every
 * request but the first would present a spent refresh token, which reuse
 * detection answers by revoking the whole grant, signing the user out. Logto
 * SDKs keep their stored refresh token when a response carries none, so no
 * `refresh_token` is returned here. (Logto's own server does run its rotation
 * policy on these requests; answering without rotating is a deliberate
 * difference, not an imitation.)
 */
function createOrganizationTokenHandler({ organizations, users }: OrganizationTokenDeps, builtIn: GrantHandler) {
  return async function issueOrganizationToken(ctx: RefreshGrantContext, organizationId: string): Promise<void> {
    const { provider, params, client } = ctx.oidc;
    if (params.resource !== undefined) {
      throw new errors.InvalidTarget('organization tokens have their own audience: do not send resource with organization_id');
    }
    if (typeof params.refresh_token !== 'string') throw new errors.InvalidRequest("missing required parameter 'refresh_token'");

    // The refresh token: valid, this client's, not sender-constrained (Sesame enables neither DPoP nor mTLS).
    const refreshToken = await provider.RefreshToken.find(params.refresh_token, { ignoreExpiration: true });
    if (!refreshToken) throw new errors.InvalidGrant('refresh token not found');
    if (refreshToken.clientId !== client.clientId) throw new errors.InvalidGrant('client mismatch');
    if (refreshToken.isExpired) throw new errors.InvalidGrant('refresh token is expired');
    // A spent refresh token goes to oidc-provider's handler, whose reuse detection revokes the
    // grant and refuses (it never issues for a consumed token), exactly as for an ordinary refresh.
    if (refreshToken.consumed) return builtIn(ctx);
    if (refreshToken.jkt || refreshToken['x5t#S256']) {
      throw new errors.InvalidGrant('organization tokens are not available for sender-constrained refresh tokens');
    }

    // Its grant, and the organizations scope in it.
    const grantId = refreshToken.grantId;
    const grant = grantId ? await provider.Grant.find(grantId) : undefined;
    if (!grant) throw new errors.InvalidGrant('grant not found');
    if (grant.clientId !== client.clientId) throw new errors.InvalidGrant('client mismatch');
    if (grant.accountId !== refreshToken.accountId) throw new errors.InvalidGrant('accountId mismatch');
    const granted = new Set(grant.getOIDCScopeFiltered(refreshToken.scopes).split(' '));
    if (!granted.has(ORGANIZATIONS_SCOPE)) {
      throw new errors.InvalidScope(`the refresh token was not granted the ${ORGANIZATIONS_SCOPE} scope`, ORGANIZATIONS_SCOPE);
    }
    const requested = params.scope ? ctx.oidc.requestParamScopes : refreshToken.scopes;
    const missing = [...requested].filter((scope) => !refreshToken.scopes.has(scope));
    if (missing.length > 0) throw new errors.InvalidScope('refresh token missing requested scope', missing.join(' '));

    // The user: still there, not suspended, a member of the organization (unknown organizations have no members).
    const user = await users.findById(refreshToken.accountId);
    if (!user || user.isSuspended) throw new errors.InvalidGrant('the user of this refresh token no longer exists or is suspended');
    if (!(await organizations.isMember(organizationId, user.id))) {
      // oidc-provider's InvalidGrant hides its detail; this one the app must be able to show.
      throw new errors.CustomOIDCProviderError('invalid_grant', 'user is not a member of the organization');
    }

    ctx.oidc.entity('RefreshToken', refreshToken);
    ctx.oidc.entity('Grant', grant);
    const audience = organizationAudience(organizationId);
    const accessToken = new provider.AccessToken({
      accountId: user.id,
      client,
      grantId: grantId!,
      gty: refreshToken.gty?.endsWith('refresh_token') ? refreshToken.gty : `${refreshToken.gty ?? ''} refresh_token`.trim(),
      sessionUid: refreshToken.sessionUid,
      sid: refreshToken.sid,
      expiresWithSession: refreshToken.expiresWithSession,
      // ttl.AccessToken is a number in Sesame's configuration, so the resource server's TTL would not apply.
      expiresIn: ORGANIZATION_TOKEN_TTL,
    });
    // `organization_id` is added by `extraTokenClaims` (organizationTokenClaims) from this audience.
    accessToken.resourceServer = new provider.ResourceServer(audience, organizationResourceServer(audience));
    accessToken.scope = [...requested].filter((scope) => ORGANIZATION_SCOPES.includes(scope) && granted.has(scope)).join(' ');
    ctx.oidc.entity('AccessToken', accessToken);
    const value = await accessToken.save();

    ctx.body = {
      access_token: value,
      token_type: accessToken.tokenType,
      expires_in: accessToken.expiration,
      scope: accessToken.scope,
    };
  };
}
