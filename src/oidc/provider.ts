import Provider, { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { MANAGEMENT_ACCESS_METADATA, THIRD_PARTY_METADATA, type ApplicationService } from '../applications/index.ts';
import type { Config } from '../config.ts';
import type { Database } from '../db/index.ts';
import { html, raw, renderErrorPage, renderPage } from '../http/pages.ts';
import { negotiateLanguage, translator } from '../i18n/index.ts';
import { defaultSignInSettings, type SettingsService } from '../settings/index.ts';
import type { OrganizationRepository } from '../organizations/index.ts';
import type { AccountCache } from '../users/account-cache.ts';
import type { UserRepository } from '../users/index.ts';
import { createAdapterFactory } from './adapter.ts';
import type { ModelCache } from './model-cache.ts';
import type { KeySet } from './keys.ts';
import {
  installOrganizationTokens,
  ORGANIZATION_ROLES_SCOPE,
  ORGANIZATIONS_RESOURCE,
  ORGANIZATIONS_SCOPE,
  organizationResourceServer,
  organizationTokenClaims,
} from './organization-token.ts';
import type { MfaService } from '../mfa/index.ts';
import { appHomeOf, clientMetadata } from './interactions.ts';
import { ACR_MFA, createInteractionPolicy } from './policy.ts';

export const MANAGEMENT_API_SCOPE = 'all';
/** The scope of the my-account resource. */
export const MY_ACCOUNT_SCOPE = 'account';

/** Extra authorization parameters Sesame and Logto SDKs send. */
const extraParamNames = ['one_time_token', 'first_screen', 'interaction_mode', 'organization_id', 'direct_sign_in', 'identifier'] as const;

const boundedParam = (name: string) => (_ctx: unknown, value: string | undefined) => {
  if (value !== undefined && (typeof value !== 'string' || value.length > 512)) {
    throw new errors.InvalidRequest(`${name} must be a string of at most 512 characters`);
  }
};

export type ProviderDeps = {
  config: Config;
  db: Database;
  keySet: KeySet;
  applications: ApplicationService;
  users: UserRepository;
  /** findAccount's user rows (src/users/account-cache.ts). */
  accounts: Pick<AccountCache, 'find'>;
  /** oidc-provider's grants and access tokens, kept across requests (src/oidc/model-cache.ts). */
  models?: ModelCache;
  organizations: OrganizationRepository;
  settings: SettingsService;
  mfa: MfaService;
};

const LOGOUT_LANGUAGE_COOKIE = 'sesame_logout_lang';

/** The language and brand of a page the provider renders itself (logout, errors). */
async function pageContext(ctx: KoaContextWithOIDC, settings: SettingsService) {
  // An error page must render even while the database is unreachable.
  const current = await settings.get().catch(() => defaultSignInSettings());
  const uiLocales = (ctx.oidc?.params as Record<string, unknown> | undefined)?.ui_locales;
  const lang = negotiateLanguage({
    // The logout confirmation remembers its language for the "signed out" page that follows.
    uiLocales: typeof uiLocales === 'string' ? uiLocales : ctx.cookies.get(LOGOUT_LANGUAGE_COOKIE),
    acceptLanguage: ctx.get('Accept-Language'),
    fallback: current.defaultLanguage,
  });
  return { t: translator(lang), options: { lang, brand: current.branding } };
}

/** `organizations` (ids) and `organization_roles` (`orgId:roleName`) claims, with one query, only when a scope asks. */
async function organizationClaims(organizations: OrganizationRepository, userId: string, scope: string) {
  const scopes = new Set(scope.split(' '));
  const wantsIds = scopes.has(ORGANIZATIONS_SCOPE);
  const wantsRoles = scopes.has(ORGANIZATION_ROLES_SCOPE);
  if (!wantsIds && !wantsRoles) return {};
  const memberships = await organizations.membershipsOfUser(userId);
  return {
    ...(wantsIds ? { organizations: memberships.map(({ organization }) => organization.id) } : {}),
    ...(wantsRoles
      ? { organization_roles: memberships.flatMap(({ organization, roles }) => roles.map((role) => `${organization.id}:${role.name}`)) }
      : {}),
  };
}

/** Resource indicators of a code or refresh token. */
const resourcesOf = (model: { resource?: string | string[] | undefined }) =>
  model.resource === undefined ? [] : Array.isArray(model.resource) ? model.resource : [model.resource];

export function createProvider({ config, db, keySet, applications, users, accounts, models, organizations, settings, mfa }: ProviderDeps): Provider {
  const Adapter = createAdapterFactory(db, { findClient: (id) => applications.findClientMetadata(id), models });

  const configuration: Configuration = {
    adapter: Adapter,
    jwks: { keys: keySet.signing as unknown as NonNullable<Configuration['jwks']>['keys'] },
    cookies: {
      keys: keySet.cookie,
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      // The interaction cookie must reach /interaction/* and /api/experience/*.
      short: { signed: true, httpOnly: true, sameSite: 'lax', path: '/' },
    },
    claims: {
      openid: ['sub', 'amr', 'acr'],
      email: ['email', 'email_verified'],
      profile: ['name', 'updated_at'],
      [ORGANIZATIONS_SCOPE]: ['organizations'],
      [ORGANIZATION_ROLES_SCOPE]: ['organization_roles'],
    },
    // Logto SDK users read email from the ID token.
    conformIdTokenClaims: false,
    scopes: ['openid', 'offline_access', 'profile', 'email', ORGANIZATIONS_SCOPE, ORGANIZATION_ROLES_SCOPE],
    responseTypes: ['code'],
    // Sign-ins with a second factor carry acr=mfa; acr_values=mfa asks for one (a step-up).
    acrValues: [ACR_MFA],
    pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
    extraParams: Object.fromEntries(extraParamNames.map((name) => [name, boundedParam(name)])),
    extraClientMetadata: { properties: [MANAGEMENT_ACCESS_METADATA, THIRD_PARTY_METADATA] },
    clientBasedCORS: (_ctx, origin, client) =>
      client.clientAuthMethod === 'none' &&
      (client.redirectUris ?? []).some((uri) => {
        try {
          return new URL(uri).origin === origin;
        } catch {
          return false;
        }
      }),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // A client may introspect its own tokens; machine-to-machine clients (APIs acting as
        // resource servers) may introspect any token. Web and native apps cannot probe others' tokens.
        allowedPolicy: async (_ctx, client, token) =>
          token.clientId === client.clientId || client.grantTypeAllowed('client_credentials'),
      },
      revocation: {
        enabled: true,
        // Only the client a token was issued to may revoke it.
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          const { t, options } = await pageContext(ctx, settings);
          ctx.cookies.set(LOGOUT_LANGUAGE_COOKIE, options.lang, { httpOnly: true, sameSite: 'lax', path: '/oidc/session', maxAge: 10 * 60 * 1000, signed: false });
          renderPage(
            ctx,
            t('logout.title'),
            html`<h1>${t('logout.title')}</h1>
<p>${t('logout.intro')}</p>
${raw(form)}
<button type="submit" form="op.logoutForm" value="yes" name="logout" autofocus>${t('logout.yes')}</button>
<button type="submit" form="op.logoutForm" class="secondary">${t('logout.no')}</button>`,
            200,
            options,
          );
        },
        postLogoutSuccessSource: async (ctx) => {
          const { t, options } = await pageContext(ctx, settings);
          renderPage(ctx, t('logout.doneTitle'), html`<h1>${t('logout.doneTitle')}</h1><p>${t('logout.done')}</p>`, 200, options);
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => (oneOf ?? undefined) as unknown as string,
        // The organizations resource only marks a sign-in as organization-capable (Logto SDKs send
        // it with the organizations scope; organization tokens come from `organization_id`
        // requests). Used implicitly, it would turn the sign-in's access token into a JWT the
        // userinfo endpoint refuses, so codes and refresh tokens carrying it are not targeted.
        useGrantedResource: (_ctx, model) => !resourcesOf(model).includes(ORGANIZATIONS_RESOURCE),
        getResourceServerInfo: (_ctx, resource, client) => {
          if (resource === ORGANIZATIONS_RESOURCE) return organizationResourceServer(ORGANIZATIONS_RESOURCE);
          // A user's own account API: any sign-in may ask for it (scope `account`), machine clients get nothing.
          if (resource === config.myAccountResource) {
            return {
              scope: client.grantTypeAllowed('authorization_code') ? MY_ACCOUNT_SCOPE : '',
              audience: config.myAccountResource,
              accessTokenTTL: 900,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: 'ES256' } },
            };
          }
          if (resource !== config.managementApiResource) throw new errors.InvalidTarget();
          const allowed = clientMetadata(client)[MANAGEMENT_ACCESS_METADATA] === true;
          return {
            scope: allowed ? MANAGEMENT_API_SCOPE : '',
            audience: config.managementApiResource,
            accessTokenTTL: 3600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      ClientCredentials: 3600,
      IdToken: 3600,
      Interaction: 3600,
      Grant: 14 * 24 * 3600,
      RefreshToken: 14 * 24 * 3600,
      Session: 14 * 24 * 3600,
    },
    rotateRefreshToken: true,
    extraTokenClaims: (_ctx, token) => organizationTokenClaims(token),
    issueRefreshToken: async (_ctx, client, code) =>
      client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    findAccount: async (_ctx, sub) => {
      const user = await accounts.find(sub);
      // A suspended user stops being an account: no userinfo, no refresh.
      if (!user || user.isSuspended) return undefined;
      return {
        accountId: user.id,
        claims: async (_use, scope) => ({
          sub: user.id,
          email: user.primaryEmail ?? undefined,
          email_verified: user.emailVerified,
          name: user.name ?? undefined,
          ...(await organizationClaims(organizations, user.id, scope)),
        }),
      };
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
      policy: createInteractionPolicy({ mfa, settings }),
    },
    renderError: async (ctx, out) => {
      const { t, options } = await pageContext(ctx, settings);
      const backTo = appHomeOf(ctx.oidc?.client);
      renderErrorPage(
        ctx,
        {
          title: t('error.title'),
          message: out.error_description ?? t('error.generic'),
          code: out.error,
          ...(backTo ? { backTo, backLabel: t('common.back') } : {}),
        },
        undefined,
        options,
      );
    },
  };

  const provider = new Provider(config.issuer, configuration);
  installOrganizationTokens(provider, { organizations, users });
  // RFC 7009: revocation answers 200 and clients ignore the body. Koa types oidc-provider's empty
  // body text/plain, which oidc-client-ts refuses (it accepts JSON or no Content-Type): send none.
  // Revocation is a POST: every other request passes straight through (no async layer of its own).
  provider.use((ctx, next) => {
    if (ctx.method !== 'POST') return next();
    return next().then(() => {
      if (ctx.oidc?.route === 'revocation' && ctx.status === 200 && ctx.body === '') ctx.remove('Content-Type');
    });
  });
  return provider;
}

export type { Provider, KoaContextWithOIDC };
