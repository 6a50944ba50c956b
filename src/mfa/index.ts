import { createHmac, randomInt } from 'node:crypto';
import QRCode from 'qrcode';
import type { Database } from '../db/index.ts';
import { invalidatedCache, withoutInvalidation, type InvalidationChannel } from '../db/invalidation.ts';
import { run, statement } from '../db/statements.ts';
import { AppError } from '../errors.ts';
import { seal, unseal } from '../lib/crypto.ts';
import { generateId } from '../lib/ids.ts';
import { generateTotpSecret, matchTotp, otpauthUri } from './totp.ts';

export { generateTotpSecret, matchTotp, otpauthUri, totpCode, timeStep } from './totp.ts';

export const BACKUP_CODE_COUNT = 10;
/** How long an instance keeps whether a user has an authenticator (a backstop: changes are announced). */
export const HAS_TOTP_CACHE_MS = 60_000;
/** Consecutive failures that lock a factor for one sign-in. */
export const MAX_FACTOR_FAILURES = 5;

// 12 characters of a 31-letter alphabet ≈ 59 bits; no 0/O, 1/I/L.
const backupAlphabet = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
const newBackupCode = () => {
  const raw = Array.from({ length: 12 }, () => backupAlphabet[randomInt(backupAlphabet.length)]).join('');
  return `${raw.slice(0, 4)}-${raw.slice(4, 8)}-${raw.slice(8)}`;
};
/** Case, spaces and dashes do not matter when a backup code is typed. */
export const normalizeBackupCode = (code: string) => code.toUpperCase().replace(/[\s-]/g, '');

export type MfaFactor = { id: string; type: 'totp'; createdAt: Date; confirmedAt: Date | null };

/** Read on every sign-in (the MFA prompt's check): prepared on PostgreSQL. */
const SELECT_TOTP = statement(
  'mfa_totp',
  `SELECT id, user_id, type, secret_sealed, last_used_step, confirmed_at, created_at FROM user_mfa_factors WHERE user_id = ? AND type = 'totp' LIMIT 1`,
);

type FactorRow = {
  id: string;
  user_id: string;
  type: 'totp';
  secret_sealed: string;
  last_used_step: string | number | null;
  confirmed_at: Date | null;
  created_at: Date;
};

const toFactor = (row: FactorRow): MfaFactor => ({
  id: row.id,
  type: row.type,
  createdAt: new Date(row.created_at),
  confirmedAt: row.confirmed_at ? new Date(row.confirmed_at) : null,
});

export type MfaService = ReturnType<typeof createMfaService>;

/**
 * TOTP authenticators and backup codes. A TOTP secret is sealed at rest and
 * active only once a correct code confirmed it; each time step is accepted
 * once per user (an atomic compare on `last_used_step`), so a replayed or
 * parallel code fails. Backup codes are HMAC-hashed and used once.
 */
export function createMfaService(deps: {
  db: Database;
  clock: () => Date;
  sealKey: Buffer;
  hashKey: Buffer;
  issuer: string;
  /** What announces other writers' changes to authenticators; without one `hasTotp` reads the database every time. */
  invalidation?: InvalidationChannel;
}) {
  const { db, clock, sealKey, hashKey, issuer } = deps;
  // Whether a user has a confirmed authenticator: asked at every sign-in's resume.
  const confirmed = invalidatedCache<boolean>(deps.invalidation ?? withoutInvalidation(), 'mfa', { ttlMs: HAS_TOTP_CACHE_MS, maxEntries: 10_000 });
  /** Runs a write of the user's authenticators; this instance forgets its answer when it returns, before the notice. */
  const changing = async <T>(userId: string, write: () => Promise<T>): Promise<T> => {
    try {
      return await write();
    } finally {
      confirmed.delete(userId);
    }
  };
  const factors = () => db<FactorRow>('user_mfa_factors');
  const backupCodes = () => db('user_backup_codes');
  const hashBackup = (userId: string, code: string) =>
    createHmac('sha256', hashKey).update(`${userId}:${normalizeBackupCode(code)}`).digest('hex');

  async function totpRow(userId: string) {
    return (await run<FactorRow>(db, SELECT_TOTP, [userId]))[0];
  }

  async function replaceBackupCodes(userId: string, trx: Database | import('knex').Knex.Transaction = db): Promise<string[]> {
    const codes = Array.from({ length: BACKUP_CODE_COUNT }, newBackupCode);
    await trx('user_backup_codes').where({ user_id: userId }).delete();
    await trx('user_backup_codes').insert(
      codes.map((code) => ({ id: generateId(), user_id: userId, code_hash: hashBackup(userId, code), created_at: clock() })),
    );
    return codes;
  }

  return {
    /** Whether the user has a confirmed authenticator, and how many backup codes are left. */
    async status(userId: string) {
      const row = await totpRow(userId);
      const [{ count }] = (await backupCodes().where({ user_id: userId }).whereNull('used_at').count({ count: '*' })) as [{ count: string | number }];
      return { totp: Boolean(row?.confirmed_at), backupCodesLeft: Number(count) };
    },

    /**
     * Whether the user has a confirmed authenticator, kept per instance while
     * the invalidation channel is live (a factor's confirmation or removal is
     * announced by a trigger, whoever makes it; this instance's own at once).
     */
    async hasTotp(userId: string): Promise<boolean> {
      return (await confirmed.get(userId, async () => Boolean((await totpRow(userId))?.confirmed_at))) ?? false;
    },

    /**
     * Runs `read`, which answers whether the user has a confirmed
     * authenticator along with the user (the sign-in's upsert), and keeps the
     * answer for `hasTotp`, unless a change was announced while it ran.
     */
    async remembering<R extends { user: { id: string }; hasTotp?: boolean } | undefined>(read: () => Promise<R>): Promise<R> {
      const mark = confirmed.mark();
      const result = await read();
      if (result?.hasTotp !== undefined) confirmed.put(result.user.id, result.hasTotp, mark);
      return result;
    },

    async listFactors(userId: string): Promise<MfaFactor[]> {
      return ((await factors().where({ user_id: userId }).orderBy('created_at')) as FactorRow[]).map(toFactor);
    },

    /**
     * Starts (or restarts) an enrolment: a new secret, pending until a code
     * confirms it. Refused while a confirmed authenticator exists.
     */
    async startTotp(userId: string, accountName: string) {
      const existing = await totpRow(userId);
      if (existing?.confirmed_at) throw new AppError('CONFLICT', 'An authenticator is already set up; remove it first.');
      const secret = generateTotpSecret();
      await factors()
        .insert({ id: generateId(), user_id: userId, type: 'totp', secret_sealed: seal(sealKey, secret), created_at: clock() })
        .onConflict(['user_id', 'type'])
        .merge({ secret_sealed: seal(sealKey, secret), last_used_step: null, created_at: clock() });
      const uri = otpauthUri({ secret, issuer, accountName });
      const svg = await QRCode.toString(uri, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' });
      return { secret, otpauthUri: uri, qrCodeDataUri: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}` };
    },

    /** The pending (not yet confirmed) enrolment's QR code and key, to show again after a wrong code. */
    async pendingTotp(userId: string, accountName: string) {
      const row = await totpRow(userId);
      if (!row || row.confirmed_at) return undefined;
      const secret = unseal(sealKey, row.secret_sealed);
      const uri = otpauthUri({ secret, issuer, accountName });
      const svg = await QRCode.toString(uri, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' });
      return { secret, otpauthUri: uri, qrCodeDataUri: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}` };
    },

    /**
     * Confirms a pending authenticator with a code; answers new backup codes
     * (shown once), unless they were issued with the enrolment already.
     */
    async confirmTotp(userId: string, code: string, options: { issueBackupCodes?: boolean } = {}): Promise<{ backupCodes: string[] }> {
      const row = await totpRow(userId);
      if (!row) throw new AppError('NOT_FOUND', 'Start the authenticator set-up first.');
      if (row.confirmed_at) throw new AppError('CONFLICT', 'The authenticator is already set up.');
      const step = matchTotp(unseal(sealKey, row.secret_sealed), code.replace(/\s/g, ''), clock());
      if (step === undefined) throw new AppError('TOTP_INVALID');
      return changing(userId, () => db.transaction(async (trx) => {
        const [updated] = await trx('user_mfa_factors')
          .where({ id: row.id })
          .whereNull('confirmed_at')
          .update({ confirmed_at: clock(), last_used_step: step })
          .returning('id');
        if (!updated) throw new AppError('CONFLICT', 'The authenticator is already set up.');
        return { backupCodes: options.issueBackupCodes === false ? [] : await replaceBackupCodes(userId, trx) };
      }));
    },

    /** Checks a TOTP code; each time step works once (atomically). */
    async verifyTotp(userId: string, code: string): Promise<void> {
      const row = await totpRow(userId);
      if (!row?.confirmed_at) throw new AppError('TOTP_INVALID');
      const step = matchTotp(unseal(sealKey, row.secret_sealed), code.replace(/\s/g, ''), clock());
      if (step === undefined) throw new AppError('TOTP_INVALID');
      const updated = await factors()
        .where({ id: row.id })
        .andWhere((where) => where.whereNull('last_used_step').orWhere('last_used_step', '<', step))
        .update({ last_used_step: step });
      if (updated !== 1) throw new AppError('TOTP_INVALID');
    },

    /** Uses a backup code once; answers how many remain. */
    async useBackupCode(userId: string, code: string): Promise<{ remaining: number }> {
      const used = await backupCodes()
        .where({ user_id: userId, code_hash: hashBackup(userId, code) })
        .whereNull('used_at')
        .update({ used_at: clock() });
      if (used !== 1) throw new AppError('TOTP_INVALID', 'This backup code is not valid or was used.');
      return { remaining: (await this.status(userId)).backupCodesLeft };
    },

    /** New backup codes; the old ones stop working. */
    regenerateBackupCodes: (userId: string) => db.transaction((trx) => replaceBackupCodes(userId, trx)),

    /** Removes the authenticator and the backup codes. */
    async removeTotp(userId: string): Promise<boolean> {
      return changing(userId, () => db.transaction(async (trx) => {
        const removed = await trx('user_mfa_factors').where({ user_id: userId, type: 'totp' }).delete();
        await trx('user_backup_codes').where({ user_id: userId }).delete();
        return removed > 0;
      }));
    },

    async removeFactor(userId: string, factorId: string): Promise<boolean> {
      const row = (await factors().where({ id: factorId, user_id: userId }).first()) as FactorRow | undefined;
      if (!row) return false;
      return this.removeTotp(userId);
    },

    /** Optional MFA is offered once per user. */
    async wasOffered(userId: string): Promise<boolean> {
      const row = (await db('users').where({ id: userId }).first('mfa_offered_at')) as { mfa_offered_at: Date | null } | undefined;
      return Boolean(row?.mfa_offered_at);
    },
    async markOffered(userId: string): Promise<void> {
      await db('users').where({ id: userId }).update({ mfa_offered_at: clock() });
    },

    /**
     * Counts a failed second-factor attempt of one sign-in; throws
     * FACTOR_LOCKED once MAX_FACTOR_FAILURES are reached.
     */
    async recordFailure(interactionUid: string): Promise<number> {
      const expiresAt = new Date(clock().getTime() + 3600_000);
      const [row] = (await db('interaction_attempts')
        .insert({ interaction_uid: interactionUid, kind: 'mfa', failures: 1, expires_at: expiresAt })
        .onConflict(['interaction_uid', 'kind'])
        .merge({ failures: db.raw('interaction_attempts.failures + 1') })
        .returning('failures')) as Array<{ failures: number }>;
      return Number(row?.failures ?? 0);
    },
    async isLocked(interactionUid: string): Promise<boolean> {
      const row = (await db('interaction_attempts').where({ interaction_uid: interactionUid, kind: 'mfa' }).first('failures')) as { failures: number } | undefined;
      return Number(row?.failures ?? 0) >= MAX_FACTOR_FAILURES;
    },
    async resetFailures(interactionUid: string): Promise<void> {
      await db('interaction_attempts').where({ interaction_uid: interactionUid, kind: 'mfa' }).delete();
    },

    /** Remembers that this sign-in proved a second factor (enrolment shows backup codes before going on). */
    async markPassed(interactionUid: string): Promise<void> {
      await db('interaction_attempts')
        .insert({ interaction_uid: interactionUid, kind: 'mfa_passed', failures: 0, expires_at: new Date(clock().getTime() + 3600_000) })
        .onConflict(['interaction_uid', 'kind'])
        .ignore();
    },
    async hasPassed(interactionUid: string): Promise<boolean> {
      return Boolean(await db('interaction_attempts').where({ interaction_uid: interactionUid, kind: 'mfa_passed' }).first('kind'));
    },
  };
}
