import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import { AppError } from '../errors.ts';
import { grantFirstPartyConsent } from './consent.ts';

export type InteractionDetails = Awaited<ReturnType<Provider['interactionDetails']>>;

type NodeCtx = { req: IncomingMessage; res: ServerResponse };

/**
 * The interaction bound to this browser's cookie. When `uid` is given it must
 * be that interaction: a link opened in another browser has no cookie for it.
 */
export async function loadInteraction(provider: Provider, ctx: NodeCtx, uid?: string): Promise<InteractionDetails> {
  try {
    const interaction = await provider.interactionDetails(ctx.req, ctx.res);
    if (uid !== undefined && interaction.uid !== uid) throw new AppError('INTERACTION_NOT_FOUND');
    return interaction;
  } catch (error) {
    if (error instanceof errors.SessionNotFound) throw new AppError('INTERACTION_NOT_FOUND');
    throw error;
  }
}

/** Finishes the login prompt (and first-party consent with it); returns where to send the browser. */
export async function completeLogin(
  provider: Provider,
  ctx: NodeCtx,
  interaction: InteractionDetails,
  login: { accountId: string; amr: string[] },
): Promise<string> {
  const grantId = await grantFirstPartyConsent(provider, interaction, login.accountId);
  return provider.interactionResult(
    ctx.req,
    ctx.res,
    { login: { accountId: login.accountId, amr: login.amr, remember: true }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

/** Finishes a consent prompt for a first-party application without a page. */
export async function completeConsent(provider: Provider, ctx: NodeCtx, interaction: InteractionDetails): Promise<string> {
  const accountId = interaction.session?.accountId;
  if (!accountId) throw new AppError('INTERACTION_NOT_FOUND');
  const grantId = await grantFirstPartyConsent(provider, interaction, accountId);
  return provider.interactionResult(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

/** Ends the interaction by sending the user back to the app with `access_denied`. */
export function abortInteraction(provider: Provider, ctx: NodeCtx, description: string): Promise<string> {
  return provider.interactionResult(
    ctx.req,
    ctx.res,
    { error: 'access_denied', error_description: description },
    { mergeWithLastSubmission: false },
  );
}
