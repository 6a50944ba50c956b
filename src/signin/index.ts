import { AppError } from '../errors.ts';
import type { InvitationService } from '../invitations/index.ts';
import type { OrganizationService } from '../organizations/index.ts';
import type { TokenService } from '../tokens/index.ts';
import type { User, UserRepository } from '../users/index.ts';

/** Authentication method references (RFC 8176 style) Sesame records per sign-in. */
export const AMR_EMAIL = 'email';

export type SignInResult = { user: User; created: boolean; amr: string[]; jitOrganizationIds: string[] };

export type SignInService = ReturnType<typeof createSignInService>;

export function createSignInService(deps: {
  tokens: TokenService;
  users: UserRepository;
  organizations: OrganizationService;
  invitations: InvitationService;
  clock: () => Date;
}) {
  const { tokens, users, organizations, invitations, clock } = deps;
  return {
    /**
     * First factor by one-time token: consume it (atomically, for this
     * interaction), then find or create the account for its email. The token
     * proves the mailbox, so the email becomes verified. Registration settings
     * do not apply: an invitation creates the account. Then just-in-time
     * provisioning: the token's organizations (with their default roles), the
     * organizations of a new user's email domain, and an invitation's roles.
     */
    async withOneTimeToken(input: { token: string; email: string; interactionUid?: string }): Promise<SignInResult> {
      const record = await tokens.consume(input);
      const now = clock();
      const { user, created } = await users.findOrCreateVerifiedByEmail(record.email, now);
      if (user.isSuspended) throw new AppError('ACCOUNT_DISABLED');
      await users.recordSignIn(user.id, now, true);
      const jitOrganizationIds = await organizations.provisionOnSignIn({
        userId: user.id,
        tokenOrganizationIds: record.context.jitOrganizationIds ?? [],
        newUserEmail: created ? record.email : undefined,
      });
      // Invitation tokens always carry their organization: others skip the lookup on this hot path.
      if ((record.context.jitOrganizationIds ?? []).length > 0) await invitations.acceptAfterSignIn(record.id, user.id);
      return {
        user: { ...user, emailVerified: true },
        created,
        amr: [AMR_EMAIL],
        jitOrganizationIds,
      };
    },
  };
}
