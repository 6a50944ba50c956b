import { randomToken, sha256 } from '../lib/crypto.ts';
import type { ErrorCode } from '../errors.ts';

/**
 * The pure rules of one-time tokens. Time and randomness come in as
 * arguments, so tests need no clock tricks.
 */
export type StoredStatus = 'active' | 'consumed' | 'revoked';
export type TokenStatus = StoredStatus | 'expired';

export type TokenRecord = {
  id: string;
  email: string;
  status: StoredStatus;
  context: TokenContext;
  expiresAt: Date;
  createdAt: Date;
  consumedAt: Date | null;
  consumedInteractionUid: string | null;
  revokedAt: Date | null;
};

export type TokenContext = { jitOrganizationIds?: string[] };

/** 32 random bytes (256 bits), url-safe; only its SHA-256 is stored. */
export function generateOneTimeToken(random?: (size: number) => Buffer): { token: string; hash: string } {
  const token = randomToken(32, random);
  return { token, hash: hashOneTimeToken(token) };
}

export function hashOneTimeToken(token: string): string {
  return sha256(token);
}

/** An active token past its expiry reads as expired; expiry is computed at read time. */
export function effectiveStatus(record: Pick<TokenRecord, 'status' | 'expiresAt'>, now: Date): TokenStatus {
  if (record.status === 'active' && record.expiresAt.getTime() <= now.getTime()) return 'expired';
  return record.status;
}

/**
 * Why a token could not be consumed. Unknown tokens and tokens minted for
 * another email answer the same, so the API never confirms which emails have
 * tokens; the more helpful answers (expired, used) need the right email too.
 */
export function consumeFailure(
  record: Pick<TokenRecord, 'status' | 'expiresAt' | 'email'> | undefined,
  email: string,
  now: Date,
): ErrorCode {
  if (!record || record.email !== email) return 'TOKEN_INVALID';
  switch (effectiveStatus(record, now)) {
    case 'consumed':
      return 'TOKEN_ALREADY_USED';
    case 'expired':
      return 'TOKEN_EXPIRED';
    default:
      return 'TOKEN_INVALID';
  }
}

/**
 * Emails compare case-insensitively in ASCII only: `toLowerCase()` would also
 * fold Unicode lookalikes (the Kelvin sign K becomes k), matching an address
 * that was never minted.
 */
export function normalizeEmail(email: string): string {
  return email.trim().replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
}
