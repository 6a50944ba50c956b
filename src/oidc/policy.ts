import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';

const { base, Check } = interactionPolicy;

/**
 * The standard login and consent prompts, plus one rule: an authorization
 * request carrying `one_time_token` always asks for a login interaction, even
 * when a session exists, until that interaction has produced a login result.
 */
export function createInteractionPolicy() {
  const policy = base();
  const login = policy.get('login');
  if (!login) throw new Error('oidc-provider base policy has no login prompt');
  login.checks.add(
    new Check('one_time_token', 'A one-time token must be verified', (ctx: KoaContextWithOIDC) => {
      const params = ctx.oidc.params as Record<string, unknown> | undefined;
      if (typeof params?.one_time_token === 'string' && !ctx.oidc.result?.login) {
        return Check.REQUEST_PROMPT;
      }
      return Check.NO_NEED_TO_PROMPT;
    }),
  );
  return policy;
}
