import { createHmac, randomInt } from 'node:crypto';
import { AppError } from '../errors.ts';
import type { Language } from '../i18n/index.ts';
import { constantTimeEqual, randomToken, sha256 } from '../lib/crypto.ts';
import { generateId } from '../lib/ids.ts';
import type { Logger } from '../logger.ts';
import { MailError, type Mailer } from '../mail/index.ts';
import { renderSignInMail } from '../mail/sign-in.ts';
import type { SettingsService } from '../settings/index.ts';
import type { UserRepository } from '../users/index.ts';
import { MAX_CODE_ATTEMPTS, type CodePurpose, type SignInCode, type SignInCodeRepository } from './codes.ts';

export type EmailSignInRequest = {
  interactionUid: string;
  clientId: string | null;
  appName: string;
  /** Already validated and normalized (see emailSchema). */
  email: string;
  purpose: CodePurpose;
  language: Language;
  /** Registration: the chosen password, hashed. */
  passwordHash?: string;
  /** Seconds the mail works; default: the settings' link lifetime. */
  expiresIn?: number;
};

/** What a request answers, identically for known and unknown addresses. */
export type EmailSignInSent = { id: string; email: string; purpose: CodePurpose; reference: string; expiresIn: number };

export type LinkState = 'active' | 'expired' | 'consumed' | 'superseded' | 'locked';

/** The error a record in a given state answers when someone tries to use it. */
const linkErrors: Record<Exclude<LinkState, 'active'>, 'TOKEN_EXPIRED' | 'TOKEN_ALREADY_USED' | 'TOKEN_SUPERSEDED' | 'OTP_LOCKED'> = {
  expired: 'TOKEN_EXPIRED',
  consumed: 'TOKEN_ALREADY_USED',
  superseded: 'TOKEN_SUPERSEDED',
  locked: 'OTP_LOCKED',
};
const codeErrors: Record<Exclude<LinkState, 'active'>, 'OTP_EXPIRED' | 'TOKEN_ALREADY_USED' | 'TOKEN_SUPERSEDED' | 'OTP_LOCKED'> = {
  expired: 'OTP_EXPIRED',
  consumed: 'TOKEN_ALREADY_USED',
  superseded: 'TOKEN_SUPERSEDED',
  locked: 'OTP_LOCKED',
};

export function stateOf(record: SignInCode, now: Date): LinkState {
  if (record.status !== 'active') return record.status;
  return record.expiresAt.getTime() <= now.getTime() ? 'expired' : 'active';
}

// No 0/O, 1/I/L: a reference is read from one screen and compared with another.
const referenceAlphabet = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
const reference = () =>
  Array.from({ length: 6 }, (_, index) => (index === 3 ? '-' : '') + referenceAlphabet[randomInt(referenceAlphabet.length)]).join('');

/** Digits only: "123 456", "123-456" and "123456" are the same code. */
export const normalizeCode = (code: string) => code.replace(/[\s-]/g, '');

export type EmailSignIn = ReturnType<typeof createEmailSignIn>;

/**
 * Self-serve sign-in mails. A request stores a record bound to the
 * interaction that asked (a link token as SHA-256, a 6-digit code as an HMAC)
 * and mails the link and the code, or the code alone. Unknown addresses get
 * the same answer and the same record, but no mail unless sign-up is allowed.
 * Only an address's most recent record works: the mail going out supersedes
 * the earlier ones.
 */
export function createEmailSignIn(deps: {
  codes: SignInCodeRepository;
  users: UserRepository;
  settings: SettingsService;
  mailer: Mailer;
  clock: () => Date;
  /** HMAC key for codes (derived from SESAME_SECRET). */
  codeKey: Buffer;
  baseUrl: string;
  logger: Logger;
  /** Told about every link that goes out (webhooks may deliver it themselves). */
  onSent?: (event: { record: SignInCode; link?: string; mailed: boolean }) => Promise<void> | void;
}) {
  const { codes, users, settings, mailer, clock, codeKey, baseUrl, logger } = deps;
  const codeHash = (id: string, code: string) => createHmac('sha256', codeKey).update(`${id}:${code}`).digest('hex');

  /**
   * How long handing a mail to the mail server takes lately (a moving
   * average). A request for an address that gets no mail waits about as long,
   * so its answer cannot be told apart by its timing either.
   */
  let sendMs = 0;
  const recordSend = (ms: number) => {
    sendMs = sendMs === 0 ? ms : sendMs * 0.8 + ms * 0.2;
  };
  const waitLikeASend = () => {
    const ms = Math.min(sendMs, 5000) * (0.85 + Math.random() * 0.3);
    return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
  };

  return {
    linkUrl: (token: string) => `${baseUrl}/sign-in/link?token=${encodeURIComponent(token)}`,

    async request(input: EmailSignInRequest): Promise<EmailSignInSent> {
      const current = await settings.get();
      const now = clock();
      const expiresIn = input.expiresIn ?? current.linkLifetimeSeconds;
      const user = await users.findByEmail(input.email);
      const allowSignUp = input.purpose === 'register' ? current.registration : current.passwordlessSignUp;
      const mailed = Boolean(user) || allowSignUp;
      const id = generateId();
      const token = input.purpose === 'magic_link' ? randomToken(32) : undefined;
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
      const record = await codes.insert({
        id,
        interactionUid: input.interactionUid,
        clientId: input.clientId,
        email: input.email,
        purpose: input.purpose,
        tokenHash: token ? sha256(token) : null,
        codeHash: codeHash(id, code),
        reference: reference(),
        context: {
          locale: input.language,
          allowSignUp,
          ...(input.passwordHash && !user ? { passwordHash: input.passwordHash } : {}),
        },
        expiresAt: new Date(now.getTime() + expiresIn * 1000),
        createdAt: now,
      });
      const link = token ? this.linkUrl(token) : undefined;
      if (mailed) {
        const mail = renderSignInMail({
          purpose: input.purpose,
          language: input.language,
          appName: input.appName,
          productName: current.branding.name,
          accent: current.branding.primaryColor,
          email: input.email,
          code,
          reference: record.reference,
          expiresInSeconds: expiresIn,
          link,
          accountExists: input.purpose === 'register' && Boolean(user),
        });
        const sendStarted = performance.now();
        try {
          await mailer.send({ to: input.email, ...mail });
          recordSend(performance.now() - sendStarted);
        } catch (error) {
          // The earlier mail keeps working: this record never went out.
          await codes.delete(record.id);
          if (error instanceof MailError) throw new AppError('MAIL_NOT_SENT');
          throw error;
        }
      }
      await codes.supersedeOlder(record);
      if (!mailed) {
        logger.debug({ purpose: input.purpose }, 'sign-in mail not sent: no account for this address');
        await waitLikeASend();
      }
      await deps.onSent?.({ record, link, mailed });
      return { id: record.id, email: record.email, purpose: record.purpose, reference: record.reference, expiresIn };
    },

    /** What a link is, without using it (GET and HEAD of a link call only this). */
    async inspectLink(token: string) {
      const record = await codes.findByTokenHash(sha256(token));
      return record ? { record, state: stateOf(record, clock()) } : undefined;
    },

    /** The interaction's latest mail (the "check your inbox" page shows it). */
    latest: (interactionUid: string) => codes.latestForInteraction(interactionUid),

    /** Uses a link, only from the interaction that asked for it. */
    async consumeLink(token: string, interactionUid: string): Promise<SignInCode> {
      const record = await codes.findByTokenHash(sha256(token));
      if (!record) throw new AppError('TOKEN_INVALID');
      if (record.interactionUid !== interactionUid) throw new AppError('INTERACTION_NOT_FOUND');
      const consumed = await codes.consume(record.id, interactionUid, clock());
      if (consumed) return consumed;
      const state = stateOf((await codes.findById(record.id)) ?? record, clock());
      throw new AppError(state === 'active' ? 'TOKEN_INVALID' : linkErrors[state]);
    },

    /**
     * Checks a code typed into the interaction that asked for it. Compared in
     * constant time; every wrong code counts, the fifth locks the record.
     */
    async consumeCode(interactionUid: string, typed: string): Promise<SignInCode> {
      const record = await codes.latestForInteraction(interactionUid);
      if (!record) throw new AppError('OTP_INVALID');
      const state = stateOf(record, clock());
      if (state !== 'active' && state !== 'consumed') throw new AppError(codeErrors[state]);
      const code = normalizeCode(typed);
      if (!/^\d{6}$/.test(code) || !constantTimeEqual(codeHash(record.id, code), record.codeHash)) {
        const counted = await codes.recordFailure(record.id);
        if (!counted || counted.status === 'locked') throw new AppError('OTP_LOCKED');
        throw new AppError('OTP_INVALID', undefined, { attemptsLeft: MAX_CODE_ATTEMPTS - counted.attempts });
      }
      const consumed = await codes.consume(record.id, interactionUid, clock());
      if (consumed) return consumed;
      const after = stateOf((await codes.findById(record.id)) ?? record, clock());
      throw new AppError(after === 'active' ? 'OTP_INVALID' : codeErrors[after]);
    },
  };
}
