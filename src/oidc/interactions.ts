import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import { AppError } from '../errors.ts';
import { THIRD_PARTY_METADATA } from '../applications/index.ts';
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

/**
 * Where "Back to the app" goes when Sesame cannot redirect with an error: the
 * origin of the client's first registered redirect URI (never anything from
 * the request).
 */
export function appHomeOf(client: { readonly redirectUris?: readonly string[] | undefined } | undefined): string | undefined {
  const uri = client?.redirectUris?.[0];
  if (!uri) return undefined;
  try {
    const url = new URL(uri);
    return url.protocol === 'https:' || url.protocol === 'http:' ? `${url.origin}/` : undefined;
  } catch {
    return undefined;
  }
}

const metadataOfClient = new WeakMap<object, Readonly<Record<string, unknown>>>();

/**
 * A client's metadata. oidc-provider's `client.metadata()` builds it anew on
 * every call (each key renamed and looked up in a list: 2–3% of a token
 * request's CPU); a Client object never changes (a changed application is a
 * new object), so it is built once per object.
 */
export function clientMetadata(client: { metadata(): Record<string, unknown> }): Readonly<Record<string, unknown>> {
  let metadata = metadataOfClient.get(client);
  if (!metadata) {
    metadata = Object.freeze(client.metadata());
    metadataOfClient.set(client, metadata);
  }
  return metadata;
}

/** Whether the interaction's application asks its users for consent. */
export async function isThirdPartyInteraction(provider: Provider, interaction: InteractionDetails): Promise<boolean> {
  const client = await provider.Client.find(String(interaction.params.client_id));
  return client ? clientMetadata(client)[THIRD_PARTY_METADATA] === true : false;
}

/**
 * Finishes the login prompt; returns where to send the browser. A first-party
 * application's consent is granted in the same step; a third-party one comes
 * back with a consent prompt. `ts` keeps an earlier authentication time (an
 * account kept instead of switched has not signed in again).
 */
export async function completeLogin(
  provider: Provider,
  ctx: NodeCtx,
  interaction: InteractionDetails,
  login: { accountId: string; amr: string[]; ts?: number; acr?: string },
): Promise<string> {
  const thirdParty = await isThirdPartyInteraction(provider, interaction);
  const grantId = thirdParty ? undefined : await grantFirstPartyConsent(provider, interaction, login.accountId);
  return provider.interactionResult(
    ctx.req,
    ctx.res,
    {
      login: { accountId: login.accountId, amr: login.amr, remember: true, ...(login.ts ? { ts: login.ts } : {}), ...(login.acr ? { acr: login.acr } : {}) },
      ...(grantId ? { consent: { grantId } } : {}),
    },
    { mergeWithLastSubmission: false },
  );
}

/** Grants the consent prompt (the requested scopes and claims); returns where to send the browser. */
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
