import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/index.ts';
import { randomBytes } from 'node:crypto';
import { createOrganizationRepository } from '../../src/organizations/repository.ts';
import { createUserRepository, type UserRepository } from '../../src/users/index.ts';
import { databaseKind, openTestDatabase, uniqueEmail } from '../helpers/db.ts';

/**
 * The same address in a different case for each index below 32: the bits of
 * `index` pick which of every five letters is upper-cased.
 */
function caseVariant(email: string, index: number): string {
  let letter = 0;
  return [...email]
    .map((char) => {
      if (!/[a-z]/.test(char)) return char;
      const upper = (index >> letter % 5) & 1;
      letter += 1;
      return upper ? char.toUpperCase() : char;
    })
    .join('');
}

describe(`users (${databaseKind})`, () => {
  let db: Database;
  let users: UserRepository;
  const now = new Date('2026-12-01T09:30:00.000Z');

  beforeAll(async () => {
    db = await openTestDatabase();
    users = createUserRepository(db);
  });

  afterAll(async () => {
    await db?.destroy();
  });

  it('creates a verified user for a new email, and finds the same user the next time', async () => {
    const email = uniqueEmail('new');
    const first = await users.findOrCreateVerifiedByEmail(email, now);
    expect(first.created).toBe(true);
    expect(first.user).toMatchObject({ primaryEmail: email, emailVerified: true, isSuspended: false, lastSignInAt: null });
    expect(first.user.createdAt.getTime()).toBe(now.getTime());

    const second = await users.findOrCreateVerifiedByEmail(email, new Date(now.getTime() + 60_000));
    expect(second.created).toBe(false);
    expect(second.user.id).toBe(first.user.id);
    expect(second.user.createdAt.getTime()).toBe(now.getTime());
  });

  it('treats the same email in another case as the same user', async () => {
    const email = uniqueEmail('case');
    const created = await users.findOrCreateVerifiedByEmail(email, now);
    const again = await users.findOrCreateVerifiedByEmail(email.toUpperCase(), now);
    expect(again.created).toBe(false);
    expect(again.user.id).toBe(created.user.id);
  });

  it('creates exactly one user when 20 sign-ins with the same email arrive at once in different cases', async () => {
    const email = uniqueEmail('race');
    const variants = Array.from({ length: 20 }, (_, index) => caseVariant(email, index));
    expect(new Set(variants).size).toBe(20);

    const results = await Promise.all(variants.map((variant) => users.findOrCreateVerifiedByEmail(variant, now)));

    expect(results.filter((result) => result.created)).toHaveLength(1);
    expect(new Set(results.map((result) => result.user.id)).size).toBe(1);
    const rows = await db('users').whereRaw('lower(primary_email) = ?', [email.toLowerCase()]);
    expect(rows).toHaveLength(1);
  });

  it('finds a user by email whatever the case', async () => {
    const email = uniqueEmail('lookup');
    const { user } = await users.findOrCreateVerifiedByEmail(email, now);
    expect((await users.findByEmail(email))?.id).toBe(user.id);
    expect((await users.findByEmail(email.toUpperCase()))?.id).toBe(user.id);
    expect((await users.findByEmail(caseVariant(email, 5)))?.id).toBe(user.id);
  });

  it('finds no user for an email nobody signed in with', async () => {
    expect(await users.findByEmail(uniqueEmail('nobody'))).toBeUndefined();
  });

  it('finds a user by id', async () => {
    const { user } = await users.findOrCreateVerifiedByEmail(uniqueEmail('by-id'), now);
    expect(await users.findById(user.id)).toEqual(user);
  });

  it('records the time of the last sign-in', async () => {
    const { user } = await users.findOrCreateVerifiedByEmail(uniqueEmail('sign-in'), now);
    const signedInAt = new Date(now.getTime() + 3_600_000);
    await users.recordSignIn(user.id, signedInAt, true);
    expect((await users.findById(user.id))?.lastSignInAt?.getTime()).toBe(signedInAt.getTime());
  });

  describe('signInVerifiedEmail (find or create and record, one statement)', () => {
    it('creates a verified account with its sign-in recorded, then records the next sign-in on the same account', async () => {
      const email = uniqueEmail('upsert');
      const first = await users.signInVerifiedEmail(email, now);
      expect(first.created).toBe(true);
      expect(first.user).toMatchObject({ primaryEmail: email, emailVerified: true, isSuspended: false });
      expect(first.user.lastSignInAt?.getTime()).toBe(now.getTime());
      const later = new Date(now.getTime() + 60_000);
      const second = await users.signInVerifiedEmail(email.toUpperCase(), later);
      expect(second.created).toBe(false);
      expect(second.user.id).toBe(first.user.id);
      expect(second.user.primaryEmail).toBe(email);
      expect(second.user.lastSignInAt?.getTime()).toBe(later.getTime());
    });

    it('verifies the email of an existing unverified account', async () => {
      const email = uniqueEmail('unverified');
      const user = await users.insert({ id: `u-${email}`, primaryEmail: email, name: null, avatar: null, passwordHash: null, emailVerified: false, now });
      const { user: signedIn, created } = await users.signInVerifiedEmail(email, now);
      expect(created).toBe(false);
      expect(signedIn).toMatchObject({ id: user.id, emailVerified: true });
    });

    it('leaves a suspended account untouched and answers it as suspended', async () => {
      const email = uniqueEmail('suspended');
      const { user } = await users.signInVerifiedEmail(email, now);
      await users.update(user.id, { isSuspended: true }, now);
      const later = new Date(now.getTime() + 3_600_000);
      const answer = await users.signInVerifiedEmail(email, later);
      expect(answer).toMatchObject({ created: false, user: { id: user.id, isSuspended: true } });
      expect((await users.findById(user.id))?.lastSignInAt?.getTime()).toBe(now.getTime());
    });

    it('answers whether the account has a confirmed authenticator, in the same statement', async () => {
      const email = uniqueEmail('upsert-totp');
      const first = await users.signInVerifiedEmail(email, now);
      expect(first.hasTotp).toBe(false);
      const factor = { id: `f-${first.user.id}`, user_id: first.user.id, type: 'totp', secret_sealed: 'v1.sealed', created_at: now };
      await db('user_mfa_factors').insert(factor);
      expect((await users.signInVerifiedEmail(email, now)).hasTotp).toBe(false); // enrolment not confirmed yet
      await db('user_mfa_factors').where({ id: factor.id }).update({ confirmed_at: now });
      expect((await users.signInVerifiedEmail(email, now)).hasTotp).toBe(true);
    });

    it("answers a new account's email-domain organizations, and none for an existing account or another domain", async () => {
      const organizations = createOrganizationRepository(db);
      const domain = `jit-${randomBytes(4).toString('hex')}.example.test`;
      const ids = [`org-a-${domain}`, `org-b-${domain}`];
      for (const id of ids) {
        await organizations.insert({ id, name: id, description: null, customData: {} });
        await organizations.replaceJitEmailDomains(id, [domain]);
      }
      const created = await users.signInVerifiedEmail(`new@${domain}`, now);
      expect(created.created).toBe(true);
      expect([...(created.domainOrganizationIds ?? [])].sort()).toEqual([...ids].sort());
      const again = await users.signInVerifiedEmail(`new@${domain}`, now);
      expect(again.created).toBe(false);
      expect(again.domainOrganizationIds).toBeUndefined();
      const elsewhere = await users.signInVerifiedEmail(uniqueEmail('no-jit'), now);
      expect(elsewhere.domainOrganizationIds).toEqual([]);
    });

    it('creates exactly one account when 20 arrive at once in different cases', async () => {
      const email = uniqueEmail('upsert-race');
      const results = await Promise.all(Array.from({ length: 20 }, (_, index) => users.signInVerifiedEmail(caseVariant(email, index), now)));
      expect(new Set(results.map((result) => result.user.id)).size).toBe(1);
      expect(results.filter((result) => result.created)).toHaveLength(1);
    });
  });
});
