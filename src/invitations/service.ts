import { redirectUriProblem } from '../applications/index.ts';
import { AppError } from '../errors.ts';
import { generateId } from '../lib/ids.ts';
import { MailError, renderInvitationMail, type Mailer } from '../mail/index.ts';
import type { OrganizationService } from '../organizations/index.ts';
import { normalizeEmail, type TokenService } from '../tokens/index.ts';
import type { Invitation, InvitationFilter, InvitationRepository, InvitationStatus } from './repository.ts';

export type InvitationService = ReturnType<typeof createInvitationService>;

export const DEFAULT_INVITATION_EXPIRES_IN = 7 * 24 * 3600;

/** Pending invitations past their expiry read as Expired. */
export function invitationStatus(invitation: Pick<Invitation, 'status' | 'expiresAt'>, now: Date): InvitationStatus {
  return invitation.status === 'Pending' && invitation.expiresAt.getTime() <= now.getTime() ? 'Expired' : invitation.status;
}

/** The invite link: the app's landing page with the token and the email, as the one-time-token guide describes. */
export function invitationLink(landingUri: string, token: string, email: string): string {
  const url = new URL(landingUri);
  url.searchParams.set('token', token);
  url.searchParams.set('email', email);
  return url.toString();
}

/**
 * Organization invitations: a one-time token with the organization in its
 * context, recorded so admins can follow it (Pending → Accepted | Expired |
 * Revoked) and optionally mailed. Accepting is signing in with the token.
 */
export function createInvitationService(deps: {
  invitations: InvitationRepository;
  tokens: TokenService;
  organizations: OrganizationService;
  mailer: Mailer;
  clock: () => Date;
  productName?: string;
}) {
  const { invitations, tokens, organizations, mailer, clock } = deps;

  async function mustExist(id: string): Promise<Invitation> {
    const invitation = await invitations.findById(id);
    if (!invitation) throw new AppError('NOT_FOUND', 'No invitation has this id.');
    return invitation;
  }

  return {
    mustExist,

    async create(input: {
      email: string;
      organizationId: string;
      organizationRoleIds?: string[];
      expiresIn?: number;
      landingUri: string;
      sendEmail?: boolean;
      inviterClientId?: string;
    }) {
      const problem = redirectUriProblem(input.landingUri, 'Traditional');
      if (problem) throw new AppError('INVALID_INPUT', `landingUri ${problem}.`);
      const organization = await organizations.mustExist(input.organizationId);
      const roleIds = await organizations.knownRoles(input.organizationRoleIds ?? []);
      const email = normalizeEmail(input.email);
      const minted = await tokens.mint({
        email,
        // Invitations wait longer than sign-in links: a week by default (within the token maximum).
        expiresIn: input.expiresIn ?? Math.min(DEFAULT_INVITATION_EXPIRES_IN, tokens.limits.maxExpiresIn),
        context: { jitOrganizationIds: [organization.id] },
      });
      const invitation = await invitations.insert({
        id: generateId(),
        email,
        organizationId: organization.id,
        organizationRoleIds: roleIds,
        oneTimeTokenId: minted.id,
        landingUri: input.landingUri,
        expiresAt: minted.expiresAt,
        createdAt: minted.createdAt,
        inviterClientId: input.inviterClientId ?? null,
      });
      const link = invitationLink(input.landingUri, minted.token, email);
      if (input.sendEmail) {
        const mail = renderInvitationMail({
          organizationName: organization.name,
          inviteeEmail: email,
          link,
          expiresAt: minted.expiresAt,
          now: clock(),
          ...(deps.productName ? { productName: deps.productName } : {}),
        });
        try {
          await mailer.send({ to: email, ...mail });
        } catch (error) {
          if (!(error instanceof MailError)) throw error;
          // Nothing half-done: without the mail there is no invitation and no usable token.
          await invitations.delete(invitation.id);
          await tokens.delete(minted.id);
          throw new AppError('MAIL_NOT_SENT', `The invitation mail could not be sent (${error.message}). Nothing was created; try again.`);
        }
      }
      return { invitation, link, token: minted.token };
    },

    list: (filter: InvitationFilter, page: { page: number; pageSize: number }) =>
      invitations.list({ ...filter, email: filter.email ? normalizeEmail(filter.email) : undefined }, page, clock()),

    /** Revokes a pending invitation and its token; revoking twice changes nothing. */
    async revoke(id: string): Promise<Invitation> {
      const revoked = await invitations.revoke(id);
      if (revoked) {
        if (revoked.oneTimeTokenId) await tokens.revoke(revoked.oneTimeTokenId).catch(() => undefined);
        return revoked;
      }
      const current = await mustExist(id);
      if (current.status === 'Revoked') return current;
      throw new AppError('INVALID_INPUT', 'This invitation was already accepted; remove the member from the organization instead.');
    },

    async delete(id: string): Promise<void> {
      const current = await mustExist(id);
      if (current.status === 'Pending' && current.oneTimeTokenId) await tokens.revoke(current.oneTimeTokenId).catch(() => undefined);
      await invitations.delete(id);
    },

    /** Called after a sign-in consumed `tokenId`: marks its invitation accepted and gives its roles. */
    async acceptAfterSignIn(tokenId: string, userId: string) {
      const accepted = await invitations.acceptByToken(tokenId, userId, clock());
      if (accepted) await organizations.provisionMember(accepted.organizationId, userId, accepted.organizationRoleIds);
      return accepted;
    },

    status: (invitation: Invitation) => invitationStatus(invitation, clock()),
  };
}
