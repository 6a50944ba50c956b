import { AppError } from '../errors.ts';
import type { SettingsService } from '../settings/index.ts';
import { hashPassword, verifyPassword } from '../users/service.ts';
import type { SignInCode } from './codes.ts';
import type { InvitationService } from '../invitations/index.ts';
import type { MfaService } from '../mfa/index.ts';
import type { OrganizationService } from '../organizations/index.ts';
import type { TokenService } from '../tokens/index.ts';
import type { SignInUpsert, User, UserRepository } from '../users/index.ts';

/** Authentication method references (RFC 8176 style) Sesame records per sign-in. */
export const AMR_EMAIL = 'email';
export const AMR_PASSWORD = 'pwd';

/** Verified when an address has no account or no password, so both cases take as long as a wrong password. */
let dummyHash: Promise<string> | undefined;

export type SignInResult = {
  user: User;
  created: boolean;
  amr: string[];
  jitOrganizationIds: string[];
  /** The one-time token a sign-in used, when it used one. */
  tokenId?: string;
};

export type SignInService = ReturnType<typeof createSignInService>;

export function createSignInService(deps: {
  tokens: TokenService;
  users: UserRepository;
  organizations: OrganizationService;
  invitations: InvitationService;
  settings: SettingsService;
  mfa: Pick<MfaService, 'remembering'>;
  clock: () => Date;
}) {
  const { tokens, users, organizations, invitations, settings, mfa, clock } = deps;

  /**
   * The end of a sign-in by email after the account's upsert: refused when
   * the account is suspended, otherwise provisioned just in time (the
   * token's organizations, and a new account's email-domain organizations).
   */
  async function provisioned({ user, created, domainOrganizationIds }: SignInUpsert, email: string, tokenOrganizationIds: string[]): Promise<SignInResult> {
    if (user.isSuspended) throw new AppError('ACCOUNT_DISABLED');
    const jitOrganizationIds = await organizations.provisionOnSignIn({ userId: user.id, tokenOrganizationIds, newUserEmail: created ? email : undefined, domainOrganizationIds });
    return { user: { ...user, emailVerified: true }, created, amr: [AMR_EMAIL], jitOrganizationIds };
  }
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
      // Consume the token, then find or create its account, record the sign-in and verify the email: one statement
      // (a suspended account is not touched), which also answers the MFA prompt's check (kept for the resume) and a
      // new account's email-domain organizations.
      const { token: record, ...upsert } = await tokens.consumeWith(input, (consumption) => mfa.remembering(() => users.signInWithToken(consumption)));
      const signedIn = await provisioned(upsert, record.email, record.context.jitOrganizationIds ?? []);
      // Invitation tokens always carry their organization: others skip the lookup on this hot path.
      if ((record.context.jitOrganizationIds ?? []).length > 0) await invitations.acceptAfterSignIn(record.id, signedIn.user.id);
      return { ...signedIn, tokenId: record.id };
    },

    /**
     * First factor by a self-serve mail (a link or a code, already consumed):
     * the account of its address, created when the request allowed sign-up
     * (with the chosen password for a registration). New accounts join the
     * organizations of their email domain.
     */
    async withEmailCode(record: SignInCode): Promise<SignInResult> {
      const now = clock();
      // Sign-up allowed and no password chosen: the one-time token's upsert, one statement for any account.
      if (record.context.allowSignUp && !record.context.passwordHash) {
        return provisioned(await mfa.remembering(() => users.signInVerifiedEmail(record.email, now)), record.email, []);
      }
      let user = await users.findByEmail(record.email);
      let created = false;
      if (!user) {
        // No mail went out for an address without an account unless sign-up was allowed.
        if (!record.context.allowSignUp) throw new AppError('TOKEN_INVALID');
        ({ user, created } = await users.findOrCreateVerifiedByEmail(record.email, now));
        if (created && record.context.passwordHash) {
          user = (await users.update(user.id, { passwordHash: record.context.passwordHash }, now)) ?? user;
        }
      }
      if (user.isSuspended) throw new AppError('ACCOUNT_DISABLED');
      await users.recordSignIn(user.id, now, true);
      return provisioned({ user, created }, record.email, []);
    },

    /**
     * First factor by password. A missing account, an account without a
     * password and a wrong password answer the same INVALID_CREDENTIALS after
     * the same argon2 work; a disabled account is only reported to someone
     * who knows its password.
     */
    async withPassword(input: { email: string; password: string }): Promise<SignInResult> {
      if (!(await settings.get()).methods.password) throw new AppError('SIGN_IN_METHOD_DISABLED');
      const user = await users.findByEmail(input.email);
      const hash = user ? await users.passwordHashOf(user.id) : null;
      dummyHash ??= hashPassword('sesame-timing-equalizer');
      const matches = await verifyPassword(hash ?? (await dummyHash), input.password);
      if (!user || !hash || !matches) throw new AppError('INVALID_CREDENTIALS');
      if (user.isSuspended) throw new AppError('ACCOUNT_DISABLED');
      const now = clock();
      await users.recordSignIn(user.id, now, false);
      return { user, created: false, amr: [AMR_PASSWORD], jitOrganizationIds: [] };
    },
  };
}
