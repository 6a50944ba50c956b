import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest, type Database } from '../../src/db/index.ts';
import { AppError } from '../../src/errors.ts';
import { createEventBus } from '../../src/events/index.ts';
import { createTokenRepository, createTokenService, type TokenService } from '../../src/tokens/index.ts';
import { createUserRepository, type UserRepository } from '../../src/users/index.ts';
import { countQueries, databaseKind, openScratchDatabase, openTestDatabase, uniqueEmail, usingPostgres } from '../helpers/db.ts';

const limits = { defaultExpiresIn: 600, maxExpiresIn: 7 * 24 * 3600 };

/** The AppError `promise` rejects with; fails the test when it resolves or rejects otherwise. */
async function appErrorOf(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

describe(`one-time tokens (${databaseKind})`, () => {
  let db: Database;
  let tokens: TokenService;
  let offsetMs = 0;
  const startedAt = Date.now();
  const clock = () => new Date(startedAt + offsetMs);

  beforeAll(async () => {
    db = await openTestDatabase();
    tokens = createTokenService({
      repository: createTokenRepository(db),
      clock,
      events: createEventBus({ logger: pino({ level: 'silent' }) }),
      limits,
      // As in src/main.ts until organizations exist: no id names one.
      unknownOrganizationIds: async (ids) => ids,
    });
  });

  afterAll(async () => {
    await db?.destroy();
  });

  /** Each test starts at the same instant; tests that move time do so from there. */
  const resetClock = () => {
    offsetMs = 0;
  };

  describe('minting', () => {
    it('stores only the hash of the token, never the token itself', async () => {
      resetClock();
      const minted = await tokens.mint({ email: uniqueEmail('mint') });
      const row = await db('one_time_tokens').where({ id: minted.id }).first();
      expect(row).toBeDefined();
      expect(JSON.stringify(row)).not.toContain(minted.token);
      expect(Object.values(row as Record<string, unknown>)).not.toContain(minted.token);
      expect(row.token_hash).toMatch(/^[0-9a-f]{64}$/);
    });

    it('writes parallel mints together (fewer statements than mints), each answered with its own record, and each usable', async () => {
      resetClock();
      const emails = Array.from({ length: 40 }, () => uniqueEmail('grouped'));
      let minted: Array<Awaited<ReturnType<TokenService['mint']>>> = [];
      const statements = await countQueries(db, async () => {
        minted = await Promise.all(emails.map((email, index) => tokens.mint({ email, expiresIn: 600 + index })));
      });
      expect(statements).toBeLessThan(emails.length / 2);
      expect(minted.map((record) => record.email)).toEqual(emails);
      minted.forEach((record, index) => expect(record.expiresAt.getTime() - record.createdAt.getTime()).toBe((600 + index) * 1000));
      const rows = await db('one_time_tokens').whereIn('id', minted.map((record) => record.id)).select('id', 'email');
      expect(new Map(rows.map((row: { id: string; email: string }) => [row.id, row.email]))).toEqual(new Map(minted.map((record) => [record.id, record.email])));
      for (const [index, record] of minted.slice(0, 3).entries()) {
        expect((await tokens.consume({ token: record.token, email: emails[index]! })).id).toBe(record.id);
      }
    });

    it('fails only the mint whose row the database refuses when mints are written together', async () => {
      const repository = createTokenRepository(db);
      const now = clock();
      const token = (id: string, hash: string) => ({ id, email: uniqueEmail('bad'), hash, context: {}, createdAt: now, expiresAt: new Date(now.getTime() + 600_000) });
      const taken = randomBytes(32).toString('hex');
      await repository.insert(token(`taken-${taken.slice(0, 8)}`, taken));
      const outcomes = await Promise.allSettled([
        repository.insert(token(`ok1-${taken.slice(0, 8)}`, randomBytes(32).toString('hex'))),
        repository.insert(token(`dup-${taken.slice(0, 8)}`, taken)),
        repository.insert(token(`ok2-${taken.slice(0, 8)}`, randomBytes(32).toString('hex'))),
      ]);
      expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(await db('one_time_tokens').where('id', 'like', `%-${taken.slice(0, 8)}`).pluck('id')).toHaveLength(3);
    });

    it('returns a url-safe token of at least 128 bits that differs every time', async () => {
      resetClock();
      const email = uniqueEmail('mint');
      const first = await tokens.mint({ email });
      const second = await tokens.mint({ email });
      expect(first.token).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(Buffer.from(first.token, 'base64url').length).toBeGreaterThanOrEqual(16);
      expect(first.token).not.toBe(second.token);
      expect(first.id).not.toBe(second.id);
    });

    it('records the email trimmed and lower-cased', async () => {
      resetClock();
      const email = uniqueEmail('Mixed.Case');
      const minted = await tokens.mint({ email: `  ${email.toUpperCase()} ` });
      expect(minted.email).toBe(email.toLowerCase());
      expect((await tokens.get(minted.id))?.email).toBe(email.toLowerCase());
    });

    it('is active and expires after 600 seconds by default', async () => {
      resetClock();
      const minted = await tokens.mint({ email: uniqueEmail('mint') });
      expect(minted.status).toBe('active');
      expect(minted.createdAt.getTime()).toBe(clock().getTime());
      expect(minted.expiresAt.getTime() - minted.createdAt.getTime()).toBe(600_000);
      expect((await tokens.get(minted.id))?.expiresAt.getTime()).toBe(minted.expiresAt.getTime());
    });

    it('honours an expiry up to the maximum of seven days', async () => {
      resetClock();
      const minted = await tokens.mint({ email: uniqueEmail('mint'), expiresIn: limits.maxExpiresIn });
      expect(minted.expiresAt.getTime() - minted.createdAt.getTime()).toBe(limits.maxExpiresIn * 1000);
    });

    it('refuses an expiry above the maximum as invalid input and mints nothing', async () => {
      resetClock();
      const email = uniqueEmail('too-long');
      const error = await appErrorOf(tokens.mint({ email, expiresIn: limits.maxExpiresIn + 1 }));
      expect(error.code).toBe('INVALID_INPUT');
      expect(error.status).toBe(400);
      expect(error.message).toContain(String(limits.maxExpiresIn));
      expect(await db('one_time_tokens').where({ email })).toHaveLength(0);
    });

    it('refuses an expiry under a minute, zero, negative or fractional, whoever calls the service', async () => {
      resetClock();
      const email = uniqueEmail('too-short');
      for (const expiresIn of [59, 0, -600, 90.5]) {
        expect((await appErrorOf(tokens.mint({ email, expiresIn }))).code, String(expiresIn)).toBe('INVALID_INPUT');
      }
      expect(await db('one_time_tokens').where({ email })).toHaveLength(0);
    });

    it('refuses organizations that do not exist, naming them, and mints nothing', async () => {
      resetClock();
      const email = uniqueEmail('jit');
      const error = await appErrorOf(
        tokens.mint({ email, context: { jitOrganizationIds: ['org-alpha', 'org-beta', 'org-alpha'] } }),
      );
      expect(error.code).toBe('INVALID_INPUT');
      expect(error.message).toContain('org-alpha');
      expect(error.message).toContain('org-beta');
      expect(error.details).toEqual({ unknownOrganizationIds: ['org-alpha', 'org-beta'] });
      expect(await db('one_time_tokens').where({ email })).toHaveLength(0);
    });

    it('accepts an empty list of organizations', async () => {
      resetClock();
      const minted = await tokens.mint({ email: uniqueEmail('jit'), context: { jitOrganizationIds: [] } });
      expect(minted.context).toEqual({});
    });
  });

  describe('consuming', () => {
    it('succeeds once for the email it was minted for, and then answers "already used"', async () => {
      resetClock();
      const email = uniqueEmail('consume');
      const minted = await tokens.mint({ email });

      const consumed = await tokens.consume({ token: minted.token, email });
      expect(consumed.id).toBe(minted.id);
      expect(consumed.status).toBe('consumed');
      expect(consumed.consumedAt?.getTime()).toBe(clock().getTime());
      expect((await tokens.get(minted.id))?.status).toBe('consumed');

      const error = await appErrorOf(tokens.consume({ token: minted.token, email }));
      expect(error.code).toBe('TOKEN_ALREADY_USED');
    });

    it('accepts the email in any case and with surrounding spaces', async () => {
      resetClock();
      const email = uniqueEmail('case');
      const minted = await tokens.mint({ email });
      const consumed = await tokens.consume({ token: minted.token, email: ` ${email.toUpperCase()}  ` });
      expect(consumed.id).toBe(minted.id);
    });

    it('lets exactly one of 30 parallel redemptions win; the others are told it was already used', async () => {
      resetClock();
      const email = uniqueEmail('race');
      const minted = await tokens.mint({ email });

      const results = await Promise.allSettled(
        Array.from({ length: 30 }, () => tokens.consume({ token: minted.token, email })),
      );

      expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
      const rejected = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
      expect(rejected).toHaveLength(29);
      for (const { reason } of rejected) {
        expect(reason).toBeInstanceOf(AppError);
        expect((reason as AppError).code).toBe('TOKEN_ALREADY_USED');
      }
    });

    it('lets the interaction that consumed a token present it again, but no other interaction', async () => {
      resetClock();
      const email = uniqueEmail('rebind');
      const minted = await tokens.mint({ email });
      const interactionUid = `interaction-${randomBytes(8).toString('hex')}`;

      const first = await tokens.consume({ token: minted.token, email, interactionUid });
      offsetMs += 5_000;
      const again = await tokens.consume({ token: minted.token, email, interactionUid });
      expect(again.id).toBe(minted.id);
      expect(again.consumedInteractionUid).toBe(interactionUid);
      // The first consumption is what is recorded.
      expect(again.consumedAt?.getTime()).toBe(first.consumedAt?.getTime());

      const otherInteraction = await appErrorOf(
        tokens.consume({ token: minted.token, email, interactionUid: `interaction-${randomBytes(8).toString('hex')}` }),
      );
      expect(otherInteraction.code).toBe('TOKEN_ALREADY_USED');

      const noInteraction = await appErrorOf(tokens.consume({ token: minted.token, email }));
      expect(noInteraction.code).toBe('TOKEN_ALREADY_USED');
    });

    it('answers "invalid" for another email and leaves the token usable by its owner', async () => {
      resetClock();
      const email = uniqueEmail('owner');
      const minted = await tokens.mint({ email });

      const error = await appErrorOf(tokens.consume({ token: minted.token, email: uniqueEmail('intruder') }));
      expect(error.code).toBe('TOKEN_INVALID');
      expect((await tokens.get(minted.id))?.status).toBe('active');

      expect((await tokens.consume({ token: minted.token, email })).id).toBe(minted.id);
    });

    it('answers "invalid" for another email even once the token is used', async () => {
      resetClock();
      const email = uniqueEmail('owner');
      const minted = await tokens.mint({ email });
      await tokens.consume({ token: minted.token, email });
      const error = await appErrorOf(tokens.consume({ token: minted.token, email: uniqueEmail('intruder') }));
      expect(error.code).toBe('TOKEN_INVALID');
    });

    it('answers "invalid" for a token that was never minted', async () => {
      resetClock();
      const error = await appErrorOf(tokens.consume({ token: randomBytes(32).toString('base64url'), email: uniqueEmail('nobody') }));
      expect(error.code).toBe('TOKEN_INVALID');
    });

    it('works until the last moment before expiry', async () => {
      resetClock();
      const email = uniqueEmail('late');
      const minted = await tokens.mint({ email });
      offsetMs += 600_000 - 1;
      expect((await tokens.consume({ token: minted.token, email })).id).toBe(minted.id);
    });

    it('answers "expired" once the clock reaches the expiry, and stays unused', async () => {
      resetClock();
      const email = uniqueEmail('expired');
      const minted = await tokens.mint({ email, expiresIn: 60 });
      offsetMs += 60_000;

      const error = await appErrorOf(tokens.consume({ token: minted.token, email }));
      expect(error.code).toBe('TOKEN_EXPIRED');
      expect((await tokens.get(minted.id))?.status).toBe('active');
      expect((await tokens.get(minted.id))?.consumedAt).toBeNull();

      offsetMs += 3_600_000;
      expect((await appErrorOf(tokens.consume({ token: minted.token, email }))).code).toBe('TOKEN_EXPIRED');
    });

    it('does not let the consuming interaction present a token again after it expired', async () => {
      resetClock();
      const email = uniqueEmail('rebind-late');
      const minted = await tokens.mint({ email, expiresIn: 60 });
      const interactionUid = `interaction-${randomBytes(8).toString('hex')}`;
      await tokens.consume({ token: minted.token, email, interactionUid });
      offsetMs += 61_000;
      const error = await appErrorOf(tokens.consume({ token: minted.token, email, interactionUid }));
      expect(['TOKEN_ALREADY_USED', 'TOKEN_EXPIRED']).toContain(error.code);
    });
  });

  describe("consuming with the sign-in's account upsert (src/users, one statement)", () => {
    let users: UserRepository;
    beforeAll(() => {
      users = createUserRepository(db);
    });
    const signIn = (input: { token: string; email: string; interactionUid?: string }) =>
      tokens.consumeWith(input, (consumption) => users.signInWithToken(consumption));
    const accountOf = (email: string) => db('users').whereRaw('lower(primary_email) = ?', [email]).first();

    it("consumes the token and creates its address's verified account, in one statement", async () => {
      resetClock();
      const email = uniqueEmail('with-upsert');
      const minted = await tokens.mint({ email: email.toUpperCase() });
      let result: Awaited<ReturnType<typeof signIn>> | undefined;
      expect(await countQueries(db, async () => (result = await signIn({ token: minted.token, email })))).toBe(1);
      expect(result!.token).toMatchObject({ id: minted.id, email, status: 'consumed', consumedAt: clock() });
      expect(result!.created).toBe(true);
      expect(result!.user).toMatchObject({ primaryEmail: email, emailVerified: true, lastSignInAt: clock() });
      expect((await tokens.get(minted.id))?.status).toBe('consumed');
      expect((await accountOf(email))?.id).toBe(result!.user.id);

      // The next token of the same address signs the same account in.
      offsetMs += 1_000;
      const next = await signIn({ token: (await tokens.mint({ email })).token, email });
      expect(next).toMatchObject({ created: false, user: { id: result!.user.id, lastSignInAt: clock() } });
    });

    it('writes nothing when the token is not consumed: another email, an expired token, a used one', async () => {
      resetClock();
      const email = uniqueEmail('no-upsert');
      const other = uniqueEmail('no-upsert-other');
      const minted = await tokens.mint({ email, expiresIn: 60 });
      expect((await appErrorOf(signIn({ token: minted.token, email: other }))).code).toBe('TOKEN_INVALID');
      expect((await appErrorOf(signIn({ token: 'never-minted', email }))).code).toBe('TOKEN_INVALID');
      expect(await accountOf(other)).toBeUndefined();
      expect(await accountOf(email)).toBeUndefined();

      offsetMs += 60_000;
      expect((await appErrorOf(signIn({ token: minted.token, email }))).code).toBe('TOKEN_EXPIRED');
      expect(await accountOf(email)).toBeUndefined();
      expect((await tokens.get(minted.id))?.status).toBe('active');

      resetClock();
      const used = await tokens.mint({ email });
      await tokens.consume({ token: used.token, email });
      expect((await appErrorOf(signIn({ token: used.token, email }))).code).toBe('TOKEN_ALREADY_USED');
      expect(await accountOf(email)).toBeUndefined();
    });

    it('lets exactly one of 20 parallel redemptions win and creates one account', async () => {
      resetClock();
      const email = uniqueEmail('with-upsert-race');
      const minted = await tokens.mint({ email });
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => signIn({ token: minted.token, email })));
      const won = results.filter((result) => result.status === 'fulfilled');
      expect(won).toHaveLength(1);
      expect(won[0]!.value.created).toBe(true);
      for (const result of results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')) {
        expect((result.reason as AppError).code).toBe('TOKEN_ALREADY_USED');
      }
      expect(await db('users').whereRaw('lower(primary_email) = ?', [email]).select('id')).toEqual([{ id: won[0]!.value.user.id }]);
    });

    it('consumes the token of a suspended account but leaves the account untouched, answering it as suspended', async () => {
      resetClock();
      const email = uniqueEmail('with-upsert-suspended');
      const { user } = await users.signInVerifiedEmail(email, clock());
      await users.update(user.id, { isSuspended: true }, clock());
      offsetMs += 60_000;
      const minted = await tokens.mint({ email });
      const result = await signIn({ token: minted.token, email });
      expect(result).toMatchObject({ token: { id: minted.id, status: 'consumed' }, created: false, user: { id: user.id, isSuspended: true } });
      expect((await users.findById(user.id))?.lastSignInAt?.getTime()).toBe(startedAt);
    });

    it('shares statements between sign-ins of different addresses arriving together, each answered for its own token', async () => {
      resetClock();
      const fresh = Array.from({ length: 5 }, () => uniqueEmail('batch-new'));
      const returning = uniqueEmail('batch-returning');
      const { user: existing } = await users.signInVerifiedEmail(returning, clock());
      const suspendedEmail = uniqueEmail('batch-suspended');
      const { user: suspended } = await users.signInVerifiedEmail(suspendedEmail, clock());
      await users.update(suspended.id, { isSuspended: true }, clock());
      const again = uniqueEmail('batch-again');
      const interactionUid = `interaction-${randomBytes(8).toString('hex')}`;
      const presented = await tokens.mint({ email: again });
      const first = await signIn({ token: presented.token, email: again, interactionUid });
      const stranger = uniqueEmail('batch-stranger');
      offsetMs += 60_000;
      const minted = await Promise.all([...fresh, returning, suspendedEmail].map((email) => tokens.mint({ email })));
      const misdirected = await tokens.mint({ email: uniqueEmail('batch-misdirected') });

      let results: Array<PromiseSettledResult<Awaited<ReturnType<typeof signIn>>>> = [];
      const statements = await countQueries(db, async () => {
        results = await Promise.allSettled([
          ...[...fresh, returning, suspendedEmail].map((email, index) => signIn({ token: minted[index]!.token, email })),
          // The interaction that consumed a token presents it again; a token presented for another address.
          signIn({ token: presented.token, email: again, interactionUid }),
          signIn({ token: misdirected.token, email: stranger }),
        ]);
      });
      // One at once, the other eight together, and the refused one's reason read: three (nine one by one, and more).
      expect(statements).toBeLessThanOrEqual(3);
      const value = (index: number) => (results[index] as PromiseFulfilledResult<Awaited<ReturnType<typeof signIn>>>).value;
      fresh.forEach((email, index) => {
        expect(value(index)).toMatchObject({ created: true, token: { id: minted[index]!.id, status: 'consumed' }, user: { primaryEmail: email, lastSignInAt: clock() } });
      });
      expect(new Set(fresh.map((_, index) => value(index).user.id)).size).toBe(fresh.length);
      expect(value(5)).toMatchObject({ created: false, token: { id: minted[5]!.id }, user: { id: existing.id, lastSignInAt: clock() } });
      expect(value(6)).toMatchObject({ created: false, token: { id: minted[6]!.id }, user: { id: suspended.id, isSuspended: true } });
      expect((await users.findById(suspended.id))?.lastSignInAt?.getTime()).toBe(startedAt);
      expect(value(7)).toMatchObject({ created: false, token: { id: presented.id }, user: { id: first.user.id, lastSignInAt: clock() } });
      expect(results[8]).toMatchObject({ status: 'rejected', reason: { code: 'TOKEN_INVALID' } });
      expect(await accountOf(stranger)).toBeUndefined();
      expect((await tokens.get(misdirected.id))?.status).toBe('active');
    });

    it('signs in two tokens of one address arriving together one after the other: one account, created once', async () => {
      resetClock();
      const email = uniqueEmail('batch-same');
      const other = uniqueEmail('batch-same-other');
      const [a, b, c] = await Promise.all([tokens.mint({ email: other }), tokens.mint({ email }), tokens.mint({ email })]);
      const [, second, third] = await Promise.all([
        signIn({ token: a!.token, email: other }),
        signIn({ token: b!.token, email }),
        signIn({ token: c!.token, email }),
      ]);
      expect([second.created, third.created]).toEqual([true, false]);
      expect(third.user.id).toBe(second.user.id);
      expect([second.token.id, third.token.id]).toEqual([b!.id, c!.id]);
      expect(await db('users').whereRaw('lower(primary_email) = ?', [email]).select('id')).toEqual([{ id: second.user.id }]);
    });

    it('signs the consuming interaction in again when it presents its token again', async () => {
      resetClock();
      const email = uniqueEmail('with-upsert-again');
      const minted = await tokens.mint({ email });
      const interactionUid = `interaction-${randomBytes(8).toString('hex')}`;
      const first = await signIn({ token: minted.token, email, interactionUid });
      offsetMs += 5_000;
      const again = await signIn({ token: minted.token, email, interactionUid });
      expect(again).toMatchObject({ created: false, user: { id: first.user.id, lastSignInAt: clock() }, token: { consumedAt: first.token.consumedAt } });
    });
  });
});

describe.skipIf(!usingPostgres)('the token sign-in statements on PostgreSQL', () => {
  it('find the token by its hash in their generic plan, not through every token of its address', async () => {
    // One connection, so the session asked is the one that prepared; a table with statistics, one address with many tokens.
    const { db: scratch, drop } = await openScratchDatabase({ poolMax: 1 });
    try {
      await migrateToLatest(scratch);
      await scratch.raw(`INSERT INTO one_time_tokens (id, email, token_hash, status, context, expires_at, created_at)
        SELECT 'ott' || g, CASE WHEN g <= 5000 THEN 'many@example.test' ELSE 'one' || g || '@example.test' END, 'hash' || g,
          'consumed', '{}', now() + interval '1 day', now() FROM generate_series(1, 20000) AS g`);
      await scratch.raw('ANALYZE one_time_tokens');
      // The plan PostgreSQL settles on once it has compared (after five executions), asked for at once.
      await scratch.raw('SET plan_cache_mode = force_generic_plan');
      const users = createUserRepository(scratch);
      const attempt = (email: string) => users.signInWithToken({ hash: `missing-${randomBytes(4).toString('hex')}`, email, now: new Date() });
      // One alone, then two together: both statements get prepared (neither consumes anything).
      await attempt('many@example.test');
      await Promise.all([attempt('many@example.test'), attempt('a@example.test'), attempt('b@example.test')]);
      const plan = async (sql: string) => (await scratch.raw<{ rows: Array<{ 'QUERY PLAN': string }> }>(sql)).rows.map((row) => row['QUERY PLAN']).join('\n');
      const single = await plan(
        `EXPLAIN EXECUTE sesame_users_sign_in_with_token(now(), NULL, 'hash2', 'many@example.test', now(), NULL, 'id', now(), now(), now())`,
      );
      const batched = await plan(
        `EXPLAIN EXECUTE sesame_users_sign_in_with_tokens('{hash2,hash6001}', '{many@example.test,one6001@example.test}', ARRAY[now(), now()], '{NULL,NULL}', '{id1,id2}')`,
      );
      for (const text of [single, batched]) {
        expect(text).toContain('one_time_tokens_token_hash_unique');
        expect(text).not.toContain('one_time_tokens_email_status_created_at');
      }
    } finally {
      await drop();
    }
  });
});
