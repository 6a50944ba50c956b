import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/index.ts';
import { openInvalidationChannel, withoutInvalidation, type InvalidationChannel } from '../../src/db/invalidation.ts';
import { AppError } from '../../src/errors.ts';
import { deriveKey } from '../../src/lib/crypto.ts';
import { createMfaService, MAX_FACTOR_FAILURES, timeStep, totpCode, type MfaService } from '../../src/mfa/index.ts';
import { createUserRepository } from '../../src/users/index.ts';
import { countQueries, databaseKind, openTestDatabase, uniqueEmail } from '../helpers/db.ts';
import { within } from '../helpers/wait.ts';

describe(`second factors on a real database (${databaseKind})`, () => {
  let db: Database;
  let now = new Date('2026-11-27T12:00:10Z');
  let mfa: MfaService;

  beforeAll(async () => {
    db = await openTestDatabase();
    mfa = createMfaService({ db, clock: () => now, sealKey: deriveKey('integration-secret-integration-secret', 'mfa'), hashKey: deriveKey('integration-secret-integration-secret', 'backup'), issuer: 'sesame.test' });
  });
  afterAll(async () => {
    await db?.destroy();
  });

  /** A user with a confirmed authenticator; answers its id, secret and backup codes. */
  async function enrolled() {
    const { user } = await createUserRepository(db).findOrCreateVerifiedByEmail(uniqueEmail('mfa'), now);
    const { secret } = await mfa.startTotp(user.id, user.primaryEmail!);
    const { backupCodes } = await mfa.confirmTotp(user.id, totpCode(secret, timeStep(now)));
    return { userId: user.id, secret, backupCodes };
  }
  const code = (secret: string, offsetSteps = 0) => totpCode(secret, timeStep(now) + offsetSteps);
  const refusal = (promise: Promise<unknown>) => promise.then(() => 'accepted', (error: unknown) => (error instanceof AppError ? error.code : String(error)));

  it('keeps the secret sealed: neither the base32 key nor its bytes are in the row', async () => {
    const { userId, secret } = await enrolled();
    const row = (await db('user_mfa_factors').where({ user_id: userId }).first()) as Record<string, unknown>;
    const stored = JSON.stringify(row);
    expect(stored).not.toContain(secret);
    expect(stored).not.toContain(Buffer.from(secret).toString('base64'));
    expect(String(row.secret_sealed)).toMatch(/^v1\./);
    const codes = JSON.stringify(await db('user_backup_codes').where({ user_id: userId }));
    expect(codes).not.toMatch(/[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}/);
  });

  it('accepts a code once: the same code again fails, and of 10 parallel tries exactly one succeeds', async () => {
    const { userId, secret } = await enrolled();
    now = new Date(now.getTime() + 60_000);
    const fresh = code(secret);
    expect(await refusal(mfa.verifyTotp(userId, fresh))).toBe('accepted');
    expect(await refusal(mfa.verifyTotp(userId, fresh))).toBe('TOTP_INVALID');

    now = new Date(now.getTime() + 60_000);
    const parallel = code(secret);
    const results = await Promise.all(Array.from({ length: 10 }, () => refusal(mfa.verifyTotp(userId, parallel))));
    expect(results.filter((result) => result === 'accepted')).toHaveLength(1);
    expect(results.filter((result) => result === 'TOTP_INVALID')).toHaveLength(9);
    // An older step than the last accepted one is refused too, even inside the window.
    expect(await refusal(mfa.verifyTotp(userId, code(secret, -1)))).toBe('TOTP_INVALID');
  });

  it('accepts a clock one step off either way, and refuses two steps off', async () => {
    const { userId, secret } = await enrolled();
    now = new Date(now.getTime() + 120_000);
    expect(await refusal(mfa.verifyTotp(userId, code(secret, -2)))).toBe('TOTP_INVALID');
    expect(await refusal(mfa.verifyTotp(userId, code(secret, 2)))).toBe('TOTP_INVALID');
    expect(await refusal(mfa.verifyTotp(userId, code(secret, -1)))).toBe('accepted');
    expect(await refusal(mfa.verifyTotp(userId, code(secret, 1)))).toBe('accepted');
  });

  it('uses a backup code once, even when 10 tries race; regenerated codes replace the old ones', async () => {
    const { userId, backupCodes } = await enrolled();
    expect(backupCodes).toHaveLength(10);
    expect(new Set(backupCodes).size).toBe(10);
    for (const backupCode of backupCodes) expect(backupCode.replace(/-/g, '').length).toBeGreaterThanOrEqual(10);
    const results = await Promise.all(Array.from({ length: 10 }, () => refusal(mfa.useBackupCode(userId, backupCodes[0]!))));
    expect(results.filter((result) => result === 'accepted')).toHaveLength(1);
    expect((await mfa.status(userId)).backupCodesLeft).toBe(9);
    expect((await mfa.useBackupCode(userId, backupCodes[1]!.toLowerCase())).remaining).toBe(8);
    const renewed = await mfa.regenerateBackupCodes(userId);
    expect(await refusal(mfa.useBackupCode(userId, backupCodes[2]!))).toBe('TOTP_INVALID');
    expect(await refusal(mfa.useBackupCode(userId, renewed[0]!))).toBe('accepted');
  });

  it('counts failures per interaction and locks at the fifth', async () => {
    const interaction = `interaction-${Math.random().toString(36).slice(2)}`;
    for (let failure = 1; failure < MAX_FACTOR_FAILURES; failure += 1) {
      expect(await mfa.recordFailure(interaction)).toBe(failure);
      expect(await mfa.isLocked(interaction)).toBe(false);
    }
    expect(await mfa.recordFailure(interaction)).toBe(MAX_FACTOR_FAILURES);
    expect(await mfa.isLocked(interaction)).toBe(true);
    expect(await mfa.isLocked(`${interaction}-other`)).toBe(false);
  });

  it('activates an authenticator only after a correct code, and refuses a second one while it is active', async () => {
    const { user } = await createUserRepository(db).findOrCreateVerifiedByEmail(uniqueEmail('pending'), now);
    const { secret } = await mfa.startTotp(user.id, 'x');
    expect(await mfa.hasTotp(user.id)).toBe(false);
    expect(await refusal(mfa.verifyTotp(user.id, code(secret)))).toBe('TOTP_INVALID');
    expect(await refusal(mfa.confirmTotp(user.id, code(secret, 3)))).toBe('TOTP_INVALID');
    await mfa.confirmTotp(user.id, code(secret));
    expect(await mfa.hasTotp(user.id)).toBe(true);
    expect(await refusal(mfa.startTotp(user.id, 'x'))).toBe('CONFLICT');
  });

  describe('whether a user has an authenticator, kept per instance', () => {
    let channel: InvalidationChannel;
    const keys = { sealKey: deriveKey('integration-secret-integration-secret', 'mfa'), hashKey: deriveKey('integration-secret-integration-secret', 'backup'), issuer: 'sesame.test' };
    const serviceWith = (invalidation: InvalidationChannel) => createMfaService({ db, clock: () => now, ...keys, invalidation });
    /** Live, but deaf: only this instance's own forgetting can drop an answer. */
    const deaf: InvalidationChannel = { isLive: () => true, subscribe: () => {}, listenerPid: () => undefined, close: async () => {} };
    const newUser = async () => (await createUserRepository(db).findOrCreateVerifiedByEmail(uniqueEmail('kept'), now)).user.id;

    beforeAll(async () => {
      channel = await openInvalidationChannel(db);
      await within(5_000, () => channel.isLive(), Boolean);
    });
    afterAll(async () => {
      await channel?.close();
    });

    it('asks the database once while the channel is live, and this instance sees its own confirmation and removal at once', async () => {
      const local = serviceWith(deaf);
      const userId = await newUser();
      expect(await countQueries(db, async () => {
        for (let i = 0; i < 3; i += 1) expect(await local.hasTotp(userId)).toBe(false);
      })).toBe(1);
      const { secret } = await local.startTotp(userId, 'x');
      expect(await local.hasTotp(userId)).toBe(false);
      await local.confirmTotp(userId, code(secret));
      expect(await local.hasTotp(userId)).toBe(true);
      // A verification (it writes last_used_step) changes nothing kept.
      now = new Date(now.getTime() + 60_000);
      await local.verifyTotp(userId, code(secret));
      expect(await countQueries(db, () => local.hasTotp(userId))).toBe(0);
      await local.removeTotp(userId);
      expect(await local.hasTotp(userId)).toBe(false);
    });

    it("hears another writer's confirmation and removal (plain SQL) when the notice arrives", async () => {
      const kept = serviceWith(channel);
      const userId = await newUser();
      expect(await kept.hasTotp(userId)).toBe(false);
      const { secret } = await mfa.startTotp(userId, 'x');
      await mfa.confirmTotp(userId, code(secret));
      expect(await within(2_000, () => kept.hasTotp(userId), Boolean)).toBe(true);
      await db('user_mfa_factors').where({ user_id: userId }).delete();
      expect(await within(2_000, () => kept.hasTotp(userId), (has) => !has)).toBe(false);
    });

    it("keeps what the sign-in's upsert answered, so the resume's check asks no statement", async () => {
      const users = createUserRepository(db);
      const signInAndCheck = async (service: MfaService, email: string) => {
        const { user } = await service.remembering(() => users.signInVerifiedEmail(email, now));
        let has: boolean | undefined;
        const queries = await countQueries(db, async () => (has = await service.hasTotp(user.id)));
        return { has, queries };
      };
      expect(await signInAndCheck(serviceWith(deaf), uniqueEmail('fresh'))).toEqual({ has: false, queries: 0 });
      const { userId } = await enrolled();
      const email = (await users.findById(userId))!.primaryEmail!;
      expect(await signInAndCheck(serviceWith(deaf), email)).toEqual({ has: true, queries: 0 });
    });

    it('does not keep the answer when a change was announced while the upsert ran', async () => {
      const users = createUserRepository(db);
      const listeners: Array<(id: string) => void> = [];
      const announcing: InvalidationChannel = { ...deaf, subscribe: (topic, listener) => void (topic === 'mfa' && listeners.push(listener)) };
      const service = serviceWith(announcing);
      const { user } = await service.remembering(async () => {
        const result = await users.signInVerifiedEmail(uniqueEmail('announced'), now);
        for (const listener of listeners) listener(result.user.id);
        return result;
      });
      expect(await countQueries(db, () => service.hasTotp(user.id))).toBe(1);
    });

    it('reads the database every time while the channel is not live', async () => {
      const unkept = serviceWith(withoutInvalidation());
      const userId = await newUser();
      expect(await countQueries(db, async () => {
        for (let i = 0; i < 3; i += 1) expect(await unkept.hasTotp(userId)).toBe(false);
      })).toBe(3);
      const { secret } = await mfa.startTotp(userId, 'x');
      await mfa.confirmTotp(userId, code(secret));
      expect(await unkept.hasTotp(userId)).toBe(true);
    });
  });
});
