import { z } from 'zod';

export const applicationTypes = ['Traditional', 'SPA', 'Native', 'MachineToMachine'] as const;
export type ApplicationType = (typeof applicationTypes)[number];

const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Redirect URIs are exact-match targets for codes and tokens: absolute, no
 * fragment, https, or http only on loopback; Native apps may also use a
 * private-use scheme (`com.example.app:/callback`).
 */
export function redirectUriProblem(value: string, type: ApplicationType): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute URI';
  }
  if (value.includes('#')) return 'must not contain a fragment';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:') return loopbackHosts.has(url.hostname) ? undefined : 'must use https (http is allowed only for localhost)';
  if (type === 'Native' && /^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+:$/i.test(url.protocol)) return undefined;
  if (['javascript:', 'data:', 'file:', 'vbscript:'].includes(url.protocol)) return 'uses a forbidden scheme';
  return type === 'Native' ? 'must use https, http on localhost, or a reverse-domain private scheme' : 'must use https (http is allowed only for localhost)';
}

export const oidcClientMetadataSchema = z.object({
  redirectUris: z.array(z.string().max(2048)).max(50).default([]),
  postLogoutRedirectUris: z.array(z.string().max(2048)).max(50).default([]),
});
export type OidcClientMetadata = z.infer<typeof oidcClientMetadataSchema>;

export type Application = {
  id: string;
  name: string;
  type: ApplicationType;
  description: string | null;
  oidcClientMetadata: OidcClientMetadata;
  isThirdParty: boolean;
  managementApiAccess: boolean;
  createdAt: Date;
};

/** Extra client metadata (registered with oidc-provider) carrying Management API access. */
export const MANAGEMENT_ACCESS_METADATA = 'sesame_management_api_access';
/** Client metadata marking an application whose users are asked for consent. */
export const THIRD_PARTY_METADATA = 'sesame_third_party';

/**
 * What oidc-provider needs to know about an application, in its own vocabulary.
 * Built on every `Client.find` (several per sign-in), so each shape is one
 * object literal: on Node 20 (V8 11.3) every property added after a leading
 * spread (`{ ...base, more }`) costs about 0.5 µs, this function 3–4.5 µs
 * when it was written that way (docs/performance.md).
 */
export function toClientMetadata(app: Application, secret: string | undefined): Record<string, unknown> {
  if (app.type === 'MachineToMachine') {
    return {
      client_id: app.id,
      client_name: app.name,
      [MANAGEMENT_ACCESS_METADATA]: app.managementApiAccess,
      [THIRD_PARTY_METADATA]: app.isThirdParty,
      client_secret: secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    };
  }
  const isPublic = app.type === 'SPA' || app.type === 'Native';
  return {
    client_id: app.id,
    client_name: app.name,
    [MANAGEMENT_ACCESS_METADATA]: app.managementApiAccess,
    [THIRD_PARTY_METADATA]: app.isThirdParty,
    token_endpoint_auth_method: isPublic ? 'none' : 'client_secret_basic',
    application_type: app.type === 'Native' ? 'native' : 'web',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: app.oidcClientMetadata.redirectUris,
    post_logout_redirect_uris: app.oidcClientMetadata.postLogoutRedirectUris,
    // Public clients have no secret at all (not even an undefined one).
    ...(isPublic ? {} : { client_secret: secret }),
  };
}

export function hasSecret(type: ApplicationType): boolean {
  return type === 'Traditional' || type === 'MachineToMachine';
}
