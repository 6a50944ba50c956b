import type Provider from 'oidc-provider';

type InteractionLike = {
  params: Record<string, unknown>;
  grantId?: string | undefined;
};

/**
 * Sesame's applications are first-party: their consent is granted without a
 * page. Grants the requested scopes (and resource scopes; the resource server
 * still filters what a client may really get) and returns the grant id.
 */
export async function grantFirstPartyConsent(
  provider: Provider,
  interaction: InteractionLike,
  accountId: string,
): Promise<string> {
  const clientId = String(interaction.params.client_id);
  // Reuse the interaction's grant only when it belongs to this account and client:
  // after switching accounts the old session's grant must not carry over.
  const existing = interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined;
  const grant =
    existing && existing.accountId === accountId && existing.clientId === clientId
      ? existing
      : new provider.Grant({ accountId, clientId });
  const scope = typeof interaction.params.scope === 'string' ? interaction.params.scope : 'openid';
  grant.addOIDCScope(scope);
  const resources = interaction.params.resource;
  for (const resource of Array.isArray(resources) ? resources : resources ? [resources] : []) {
    grant.addResourceScope(String(resource), scope);
  }
  if (typeof interaction.params.claims === 'string') {
    try {
      const claims = JSON.parse(interaction.params.claims) as { id_token?: object; userinfo?: object };
      grant.addOIDCClaims([...Object.keys(claims.id_token ?? {}), ...Object.keys(claims.userinfo ?? {})]);
    } catch {
      // oidc-provider has already rejected malformed claims parameters.
    }
  }
  return grant.save();
}
