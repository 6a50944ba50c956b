import { AppError } from '../errors.ts';
import type { TokenService } from '../tokens/index.ts';
import type { User, UserRepository } from '../users/index.ts';

/** Authentication method references (RFC 8176 style) Sesame records per sign-in. */
export const AMR_EMAIL = 'email';

export type SignInResult = { user: User; created: boolean; amr: string[]; jitOrganizationIds: string[] };

export type SignInService = ReturnType<typeof createSignInService>;

export function createSignInService(deps: { tokens: TokenService; users: UserRepository; clock: () => Date }) {
  const { tokens, users, clock } = deps;
  return {
    /**
     * First factor by one-time token: consume it (atomically, for this
     * interaction), then find or create the account for its email. The token
     * proves the mailbox, so the email becomes verified. Registration settings
     * do not apply: an invitation creates the account.
     */
    async withOneTimeToken(input: { token: string; email: string; interactionUid?: string }): Promise<SignInResult> {
      const record = await tokens.consume(input);
      const now = clock();
      const { user, created } = await users.findOrCreateVerifiedByEmail(record.email, now);
      if (user.isSuspended) throw new AppError('ACCOUNT_DISABLED');
      await users.recordSignIn(user.id, now, true);
      return {
        user: { ...user, emailVerified: true },
        created,
        amr: [AMR_EMAIL],
        jitOrganizationIds: record.context.jitOrganizationIds ?? [],
      };
    },
  };
}
