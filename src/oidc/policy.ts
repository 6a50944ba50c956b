import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import type { MfaService } from '../mfa/index.ts';
import type { SettingsService } from '../settings/index.ts';

const { base, Check, Prompt } = interactionPolicy;

/** `amr` values that are a second factor (RFC 8176). */
export const SECOND_FACTOR_AMR = 'otp';
/** The `acr` of a sign-in that used a second factor; `acr_values=mfa` asks for it. */
export const ACR_MFA = 'mfa';

/**
 * Whether this authorization needs the `mfa` prompt: a user with an
 * authenticator whose session has not used it; a step-up (`acr_values=mfa`)
 * on a session without a second factor; enrolment when the policy requires
 * MFA (or offers it once when optional).
 */
export async function mfaNeeded(
  deps: { mfa: MfaService; settings: SettingsService },
  session: { accountId?: string | undefined; amr?: string[] | undefined },
  acrValues: string | undefined,
): Promise<'verify' | 'enroll' | 'offer' | undefined> {
  const accountId = session.accountId;
  if (!accountId) return undefined;
  if ((session.amr ?? []).includes(SECOND_FACTOR_AMR)) return undefined;
  if (await deps.mfa.hasTotp(accountId)) return 'verify';
  const stepUp = (acrValues ?? '').split(' ').includes(ACR_MFA);
  const { policy, afterMagicLink } = (await deps.settings.get()).mfa;
  const emailFirstFactor = (session.amr ?? []).join(' ') === 'email';
  if (stepUp || policy === 'required' || (afterMagicLink === 'totp' && emailFirstFactor)) return 'enroll';
  if (policy === 'optional' && !(await deps.mfa.wasOffered(accountId))) return 'offer';
  return undefined;
}

/**
 * The standard login and consent prompts, with two additions: an
 * authorization request carrying `one_time_token` always asks for a login
 * interaction, even when a session exists, until that interaction has produced
 * a login result; and an `mfa` prompt between login and consent.
 */
export function createInteractionPolicy(deps: { mfa: MfaService; settings: SettingsService }) {
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
  const mfa = new Prompt(
    { name: 'mfa', requestable: false },
    new Check(
      'mfa_required',
      'A second factor is required',
      'interaction_required',
      async (ctx: KoaContextWithOIDC) => {
        const { session, params } = ctx.oidc;
        const needed = await mfaNeeded(deps, session ?? {}, typeof params?.acr_values === 'string' ? params.acr_values : undefined);
        return needed ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT;
      },
    ),
  );
  policy.add(mfa, policy.findIndex((prompt) => prompt.name === 'login') + 1);
  return policy;
}
