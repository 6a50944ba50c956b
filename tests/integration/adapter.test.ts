import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { errors, type AdapterPayload } from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest, type Database } from '../../src/db/index.ts';
import { adapterRequestScope, createAdapterFactory } from '../../src/oidc/adapter.ts';
import { countQueries, databaseKind, openScratchDatabase, openTestDatabase, usingPostgres } from '../helpers/db.ts';

/** Ids of our own, so parallel files on the shared PostgreSQL database never meet. */
const unique = (label: string) => `${label}-${randomBytes(8).toString('hex')}`;

/** Text that an array literal must escape: quotes, backslashes, braces, commas, NULL, unicode, a newline. */
const TRICKY = 'a "quoted" \\ back\\slash, {brace} NULL é 🗝\n';

const knownClientId = unique('client');
const knownClient = {
  client_id: knownClientId,
  client_name: 'Known client',
  redirect_uris: ['https://app.example.com/callback'],
};

describe(`the oidc-provider adapter (${databaseKind})`, () => {
  let db: Database;
  let Adapter: ReturnType<typeof createAdapterFactory>;

  beforeAll(async () => {
    db = await openTestDatabase();
    Adapter = createAdapterFactory(db, {
      // The injected client source: one known client, nothing else.
      findClient: async (id) => (id === knownClientId ? { ...knownClient } : undefined),
    });
  });

  afterAll(async () => {
    await db?.destroy();
  });

  it('finds a stored model by its id', async () => {
    const accessTokens = new Adapter('AccessToken');
    const id = unique('at');
    const payload: AdapterPayload = { jti: id, kind: 'AccessToken', accountId: 'user-1', clientId: knownClientId, scope: 'openid' };
    await accessTokens.upsert(id, payload, 3600);
    expect(await accessTokens.find(id)).toEqual(payload);
  });

  it('finds nothing for an id that was never stored', async () => {
    expect(await new Adapter('AccessToken').find(unique('missing'))).toBeUndefined();
  });

  it('replaces the payload when the same id is stored again', async () => {
    const sessions = new Adapter('Session');
    const id = unique('session');
    await sessions.upsert(id, { jti: id, accountId: 'first' }, 3600);
    await sessions.upsert(id, { jti: id, accountId: 'second' }, 3600);
    expect(await sessions.find(id)).toEqual({ jti: id, accountId: 'second' });
  });

  it("keeps a row's account in its own column, one upsert or several together, for the sessions API", async () => {
    const sessions = new Adapter('Session');
    const id = unique('session');
    const accountOf = async (ids: string[]) =>
      (await db('oidc_model_instances').where({ model_name: 'Session' }).whereIn('id', ids).orderBy('id').select('id', 'account_id')).map((row) => row.account_id);
    await sessions.upsert(id, { jti: id, accountId: 'first' }, 3600);
    expect(await accountOf([id])).toEqual(['first']);
    await sessions.upsert(id, { jti: id, accountId: 'second' }, 3600);
    expect(await accountOf([id])).toEqual(['second']);
    const ids = Array.from({ length: 5 }, (_, i) => `${unique('session-batch')}-${i}`).sort();
    await Promise.all(ids.map((other, i) => sessions.upsert(other, { jti: other, ...(i % 2 ? {} : { accountId: `account-${i}` }) }, 3600)));
    expect(await accountOf(ids)).toEqual(['account-0', null, 'account-2', null, 'account-4']);
  });

  it("stores a model's expiry at its own exp, so saving it again with the same exp leaves expires_at as it was", async () => {
    const interactions = new Adapter('Interaction');
    const id = unique('interaction');
    const expiresAt = async () => (await db('oidc_model_instances').where({ model_name: 'Interaction', id }).first('expires_at')).expires_at as Date;
    const exp = Math.floor(Date.now() / 1000) + 600;
    await interactions.upsert(id, { jti: id, exp, uid: id }, 600);
    expect((await expiresAt()).getTime()).toBe(exp * 1000);
    await sleep(5);
    // What Interaction#persist() passes: the seconds left, counted a moment later.
    await interactions.upsert(id, { jti: id, exp, uid: id, result: { login: { accountId: 'u' } } }, exp - Math.floor(Date.now() / 1000));
    expect((await expiresAt()).getTime()).toBe(exp * 1000);
    // Without an exp of its own, expiresIn seconds from now; 0 means no expiry.
    const before = Date.now();
    await interactions.upsert(id, { jti: id, uid: id }, 60);
    expect((await expiresAt()).getTime()).toBeGreaterThanOrEqual(before + 60_000);
    await interactions.upsert(id, { jti: id, uid: id, exp }, 0);
    expect(await db('oidc_model_instances').where({ model_name: 'Interaction', id }).first('expires_at')).toEqual({ expires_at: null });
  });

  it('saving a model again with the same account and expiry rewrites its row in place (a HOT update: no new index entries)', async () => {
    const id = unique('hot');
    const exp = Math.floor(Date.now() / 1000) + 600;
    const hot = await db.transaction(async (trx) => {
      const TrxAdapter = createAdapterFactory(trx, { findClient: async () => undefined });
      const sessions = new TrxAdapter('Session');
      // This connection's own counts (those not yet reported included): the difference is the save's.
      const counts = async () => {
        const { rows } = (await trx.raw(`SELECT n_tup_upd AS updated, n_tup_hot_upd AS hot FROM pg_stat_xact_user_tables WHERE relname = 'oidc_model_instances'`)) as {
          rows: Array<{ updated: string | number; hot: string | number }>;
        };
        return { updated: Number(rows[0]?.updated), hot: Number(rows[0]?.hot) };
      };
      await sessions.upsert(id, { jti: id, accountId: 'user-hot', exp, uid: id }, 600);
      const before = await counts();
      await sessions.upsert(id, { jti: id, accountId: 'user-hot', exp, uid: id, loginTs: 1 }, 599);
      const after = await counts();
      return { updated: after.updated - before.updated, hot: after.hot - before.hot };
    });
    expect(hot).toEqual({ updated: 1, hot: 1 });
  });

  it('writes parallel upserts together (fewer statements than upserts), every row stored, the later of two writes of one id winning', async () => {
    const sessions = new Adapter('Session');
    const ids = Array.from({ length: 30 }, () => unique('batched'));
    const statements = await countQueries(db, () =>
      Promise.all([
        ...ids.map((id) => sessions.upsert(id, { jti: id, n: 1, text: TRICKY }, 3600)),
        sessions.upsert(ids[0]!, { jti: ids[0], n: 2 }, 3600),
        sessions.upsert(ids[0]!, { jti: ids[0], n: 3 }, 3600),
      ]),
    );
    expect(statements).toBeLessThan(ids.length / 2);
    for (const id of ids.slice(1)) expect(await sessions.find(id)).toEqual({ jti: id, n: 1, text: TRICKY });
    expect(await sessions.find(ids[0]!)).toEqual({ jti: ids[0], n: 3 });
  });

  it('reads in parallel together (fewer statements than reads), each answered with its own row or nothing, and copies for repeated ids', async () => {
    const sessions = new Adapter('Session');
    const ids = Array.from({ length: 30 }, () => unique('read'));
    for (const id of ids) await sessions.upsert(id, { jti: id, nested: { n: 1 } }, 3600);
    const missing = unique('missing');
    let found: Array<AdapterPayload | undefined> = [];
    const statements = await countQueries(db, async () => {
      found = await Promise.all([...ids, ids[0]!, missing].map((id) => sessions.find(id)));
    });
    expect(statements).toBeLessThan(ids.length / 2);
    expect(found.slice(0, ids.length)).toEqual(ids.map((id) => ({ jti: id, nested: { n: 1 } })));
    expect(found[ids.length]).toEqual(found[0]);
    expect(found[ids.length]!.nested).not.toBe(found[0]!.nested);
    expect(found[ids.length + 1]).toBeUndefined();
  });

  it('keeps models of different kinds apart even when they share an id', async () => {
    const id = unique('shared');
    await new Adapter('AccessToken').upsert(id, { jti: id, kind: 'AccessToken' }, 3600);
    await new Adapter('RefreshToken').upsert(id, { jti: id, kind: 'RefreshToken' }, 3600);
    expect(await new Adapter('AccessToken').find(id)).toMatchObject({ kind: 'AccessToken' });
    expect(await new Adapter('RefreshToken').find(id)).toMatchObject({ kind: 'RefreshToken' });
    expect(await new Adapter('AuthorizationCode').find(id)).toBeUndefined();
  });

  it('stops finding a model once it has expired', async () => {
    const codes = new Adapter('AuthorizationCode');
    const id = unique('code');
    await codes.upsert(id, { jti: id, kind: 'AuthorizationCode' }, 1);
    expect(await codes.find(id)).toBeDefined();
    await sleep(1_100);
    expect(await codes.find(id)).toBeUndefined();
  });

  it('keeps a model stored without an expiry', async () => {
    const grants = new Adapter('Grant');
    const id = unique('grant');
    await grants.upsert(id, { jti: id, kind: 'Grant', accountId: 'user-1' }, 0);
    expect(await grants.find(id)).toMatchObject({ accountId: 'user-1' });
  });

  it('finds a session by its uid', async () => {
    const sessions = new Adapter('Session');
    const id = unique('session');
    const uid = unique('uid');
    await sessions.upsert(id, { jti: id, uid, accountId: 'user-2' }, 3600);
    expect(await sessions.findByUid(uid)).toMatchObject({ jti: id, accountId: 'user-2' });
    expect(await sessions.findByUid(unique('other-uid'))).toBeUndefined();
  });

  it('does not find an expired session by its uid', async () => {
    const sessions = new Adapter('Session');
    const id = unique('session');
    const uid = unique('uid');
    await sessions.upsert(id, { jti: id, uid }, 1);
    await sleep(1_100);
    expect(await sessions.findByUid(uid)).toBeUndefined();
  });

  it('finds a device code by its user code', async () => {
    const deviceCodes = new Adapter('DeviceCode');
    const id = unique('device');
    const userCode = unique('USER');
    await deviceCodes.upsert(id, { jti: id, userCode, clientId: knownClientId }, 600);
    expect(await deviceCodes.findByUserCode(userCode)).toMatchObject({ jti: id, userCode });
    expect(await deviceCodes.findByUserCode(unique('OTHER'))).toBeUndefined();
  });

  it('forgets a destroyed model and leaves the others', async () => {
    const accessTokens = new Adapter('AccessToken');
    const destroyed = unique('at');
    const kept = unique('at');
    await accessTokens.upsert(destroyed, { jti: destroyed }, 3600);
    await accessTokens.upsert(kept, { jti: kept }, 3600);
    await accessTokens.destroy(destroyed);
    expect(await accessTokens.find(destroyed)).toBeUndefined();
    expect(await accessTokens.find(kept)).toBeDefined();
  });

  it('revokes each token model of a grant when asked per model, and nothing of another grant or of interactions', async () => {
    const revokedGrant = unique('grant');
    const otherGrant = unique('grant');
    const ids = { code: unique('code'), access: unique('at'), refresh: unique('rt'), otherAccess: unique('at') };
    await new Adapter('AuthorizationCode').upsert(ids.code, { jti: ids.code, grantId: revokedGrant }, 600);
    await new Adapter('AccessToken').upsert(ids.access, { jti: ids.access, grantId: revokedGrant }, 3600);
    await new Adapter('RefreshToken').upsert(ids.refresh, { jti: ids.refresh, grantId: revokedGrant }, 86400);
    await new Adapter('AccessToken').upsert(ids.otherAccess, { jti: ids.otherAccess, grantId: otherGrant }, 3600);

    const interaction = unique('interaction');
    await new Adapter('Interaction').upsert(interaction, { jti: interaction, grantId: revokedGrant }, 600);

    // oidc-provider revokes a grant by asking each token model's adapter.
    for (const model of ['AuthorizationCode', 'AccessToken', 'RefreshToken']) await new Adapter(model).revokeByGrantId(revokedGrant);

    expect(await new Adapter('AuthorizationCode').find(ids.code)).toBeUndefined();
    expect(await new Adapter('AccessToken').find(ids.access)).toBeUndefined();
    expect(await new Adapter('RefreshToken').find(ids.refresh)).toBeUndefined();
    expect(await new Adapter('AccessToken').find(ids.otherAccess)).toMatchObject({ grantId: otherGrant });
    expect(await new Adapter('Interaction').find(interaction)).toMatchObject({ grantId: revokedGrant });
  });

  it('marks a consumed model with the time of consumption in epoch seconds', async () => {
    const codes = new Adapter('AuthorizationCode');
    const id = unique('code');
    await codes.upsert(id, { jti: id, kind: 'AuthorizationCode' }, 600);
    expect((await codes.find(id))?.consumed).toBeUndefined();

    const before = Math.floor(Date.now() / 1000);
    await codes.consume(id);
    const after = Math.ceil(Date.now() / 1000);

    const consumed = (await codes.find(id))?.consumed;
    expect(Number.isInteger(consumed)).toBe(true);
    // The database clock sets it; allow it a little drift from ours.
    expect(consumed).toBeGreaterThanOrEqual(before - 5);
    expect(consumed).toBeLessThanOrEqual(after + 5);
  });

  it('refuses to consume a model twice with invalid_grant', async () => {
    const refreshTokens = new Adapter('RefreshToken');
    const id = unique('rt');
    await refreshTokens.upsert(id, { jti: id }, 600);
    await refreshTokens.consume(id);
    await expect(refreshTokens.consume(id)).rejects.toBeInstanceOf(errors.InvalidGrant);
  });

  it('lets exactly one of 50 parallel redemptions of a code win', async () => {
    const codes = new Adapter('AuthorizationCode');
    const id = unique('code');
    await codes.upsert(id, { jti: id, kind: 'AuthorizationCode' }, 600);

    const results = await Promise.allSettled(Array.from({ length: 50 }, () => new Adapter('AuthorizationCode').consume(id)));

    const fulfilled = results.filter((result) => result.status === 'fulfilled');
    const rejected = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
    expect(fulfilled).toHaveLength(1);
    expect(rejected).toHaveLength(49);
    for (const { reason } of rejected) expect(reason).toBeInstanceOf(errors.InvalidGrant);
  });

  it('lets exactly one redemption of each code win when parallel redemptions of several codes, each twice, are written together', async () => {
    const ids = Array.from({ length: 10 }, () => unique('code'));
    for (const id of ids) await new Adapter('AuthorizationCode').upsert(id, { jti: id, kind: 'AuthorizationCode' }, 600);
    let results: Array<PromiseSettledResult<void>> = [];
    const statements = await countQueries(db, async () => {
      results = await Promise.allSettled([...ids, ...ids].map((id) => new Adapter('AuthorizationCode').consume(id)));
    });
    expect(statements).toBeLessThan(ids.length);
    for (const [index] of ids.entries()) {
      const outcomes = [results[index]!.status, results[index + ids.length]!.status].sort();
      expect(outcomes).toEqual(['fulfilled', 'rejected']);
    }
    const consumed = await db('oidc_model_instances').where({ model_name: 'AuthorizationCode' }).whereIn('id', ids).whereNotNull('consumed_at').count({ n: '*' });
    expect(Number(consumed[0]!.n)).toBe(ids.length);
  });

  it('deletes in parallel together, each row gone, the others kept', async () => {
    const sessions = new Adapter('Session');
    const ids = Array.from({ length: 20 }, () => unique('gone'));
    for (const id of ids) await sessions.upsert(id, { jti: id }, 3600);
    const statements = await countQueries(db, () => Promise.all(ids.slice(0, 15).map((id) => sessions.destroy(id))));
    expect(statements).toBeLessThan(8);
    for (const id of ids.slice(0, 15)) expect(await sessions.find(id)).toBeUndefined();
    for (const id of ids.slice(15)) expect(await sessions.find(id)).toEqual({ jti: id });
  });

  it('writes deletions and upserts arriving together in one statement, the later write of a key winning', async () => {
    const sessions = new Adapter('Session');
    const [x, y, z] = [unique('x'), unique('y'), unique('z')];
    await sessions.upsert(y, { jti: y, v: 0 }, 3600);
    await sessions.upsert(z, { jti: z, v: 0 }, 3600);
    // x saved then deleted, y deleted then saved again, z deleted alone: two statements (x and y each occur twice).
    const statements = await countQueries(db, () =>
      Promise.all([sessions.upsert(x, { jti: x, v: 1 }, 3600), sessions.destroy(y), sessions.destroy(z), sessions.upsert(y, { jti: y, v: 2 }, 3600), sessions.destroy(x)]),
    );
    expect(statements).toBe(2);
    expect(await sessions.find(x)).toBeUndefined();
    expect(await sessions.find(y)).toEqual({ jti: y, v: 2 });
    expect(await sessions.find(z)).toBeUndefined();
  });

  it('returns nested JSON payloads exactly as stored', async () => {
    const interactions = new Adapter('Interaction');
    const id = unique('interaction');
    const payload: AdapterPayload = {
      jti: id,
      kind: 'Interaction',
      params: { client_id: knownClientId, scope: 'openid email', claims: { id_token: { email: { essential: true } } } },
      prompt: { name: 'login', reasons: ['no_session'], details: {} },
      lastSubmission: { login: { accountId: 'user-3', amr: ['email'] } },
      returnTo: 'https://id.example.test/oidc/auth/abc?x=1&y=%C3%A9',
      extra: { unicode: 'Zoë ✓', empty: [], nested: [{ deep: [1, 2, { deeper: null }] }], flag: false, count: 0 },
    };
    await interactions.upsert(id, payload, 3600);
    expect(await interactions.find(id)).toEqual(payload);
  });

  it('reads clients from the injected client source, not from the model table', async () => {
    const clients = new Adapter('Client');
    expect(await clients.find(knownClientId)).toEqual(knownClient);
    expect(await clients.find(unique('unknown-client'))).toBeUndefined();
  });

  describe('inside one request (adapterRequestScope)', () => {
    /** A request's context as far as the scope uses it: the headers it removes. */
    const fakeContext = () => {
      const removed: string[] = [];
      return { removed, ctx: { remove: (header: string) => void removed.push(header) } };
    };
    /** Runs `body` the way the server runs a request, inside the middleware's scope; resolves once the request has ended. */
    const inRequest = async <T>(body: () => Promise<T>, ctx: object = fakeContext().ctx): Promise<T> => {
      let result!: T;
      await adapterRequestScope()(ctx as never, async () => {
        result = await body();
      });
      return result;
    };
    const rowOf = (model: string, id: string) => db('oidc_model_instances').where({ model_name: model, id }).first();

    it('holds the writes of a request until it ends, then makes them in one statement', async () => {
      const [sessions, codes, interactions] = [new Adapter('Session'), new Adapter('AuthorizationCode'), new Adapter('Interaction')];
      const [sessionId, codeId, interactionId] = [unique('session'), unique('code'), unique('int')];
      await interactions.upsert(interactionId, { jti: interactionId, kind: 'Interaction' }, 600);
      let duringRequest = -1;
      const queries = await countQueries(db, () =>
        inRequest(async () => {
          duringRequest = await countQueries(db, async () => {
            await sessions.upsert(sessionId, { jti: sessionId, kind: 'Session', v: 1 }, 600);
            await sessions.upsert(sessionId, { jti: sessionId, kind: 'Session', v: 2 }, 600);
            await codes.upsert(codeId, { jti: codeId, kind: 'AuthorizationCode' }, 600);
            await interactions.destroy(interactionId);
          });
          expect(await rowOf('Session', sessionId)).toBeUndefined();
        }),
      );
      expect(duringRequest).toBe(0);
      // The read of the Session row above, then one statement deleting the interaction and upserting both rows.
      expect(queries).toBe(2);
      expect((await rowOf('Session', sessionId))?.payload).toMatchObject({ v: 2 });
      expect(await rowOf('AuthorizationCode', codeId)).toBeDefined();
      expect(await rowOf('Interaction', interactionId)).toBeUndefined();
    });

    it('writes what it holds first when the request asks the database about it: a read, a consumption, a lookup by uid', async () => {
      const [sessions, codes] = [new Adapter('Session'), new Adapter('AuthorizationCode')];
      const [sessionId, uid, codeId] = [unique('session'), unique('uid'), unique('code')];
      await inRequest(async () => {
        await sessions.upsert(sessionId, { jti: sessionId, kind: 'Session', uid }, 600);
        expect(await sessions.findByUid(uid)).toMatchObject({ jti: sessionId });
        await codes.upsert(codeId, { jti: codeId, kind: 'AuthorizationCode' }, 600);
        await codes.consume(codeId);
        await expect(codes.consume(codeId)).rejects.toBeInstanceOf(errors.InvalidGrant);
      });
    });

    it('lets parallel reads of held models wait for the one batch that writes them all', async () => {
      const sessions = new Adapter('Session');
      const ids = [unique('session'), unique('session'), unique('session')];
      await sessions.upsert(ids[0]!, { jti: ids[0], kind: 'Session', v: 0 }, 600);
      // Another transaction holds the first row for a while, so the batch that writes all three is slow to commit.
      const holder = await db.transaction();
      await holder('oidc_model_instances').where({ model_name: 'Session', id: ids[0] }).forUpdate().select('id');
      const release = setTimeout(() => void holder.commit(), 300);
      try {
        await inRequest(async () => {
          for (const id of ids) await sessions.upsert(id, { jti: id, kind: 'Session', v: 1 }, 600);
          // The first read sends all three; the others find their key no longer held but still on its way, and wait.
          expect(await Promise.all(ids.map((id) => sessions.find(id)))).toEqual(ids.map((id) => ({ jti: id, kind: 'Session', v: 1 })));
        });
      } finally {
        clearTimeout(release);
        if (!holder.isCompleted()) await holder.commit();
      }
    });

    it('keeps what was saved, not what the provider changes in the object afterwards', async () => {
      const sessions = new Adapter('Session');
      const id = unique('session');
      await inRequest(async () => {
        const payload: AdapterPayload = { jti: id, kind: 'Session', accountId: 'saved' };
        await sessions.upsert(id, payload, 600);
        payload.accountId = 'changed after the save';
      });
      expect((await rowOf('Session', id))?.payload).toMatchObject({ accountId: 'saved' });
    });

    it('fails the request when its writes fail at the end, and drops a redirect it was about to send', async () => {
      const sessions = new Adapter('Session');
      const id = unique('session');
      const { ctx, removed } = fakeContext();
      // An expiry PostgreSQL refuses (a data error): the write fails only when the request ends.
      const failing = inRequest(() => sessions.upsert(id, { jti: id, kind: 'Session', exp: Number.MAX_SAFE_INTEGER }, 600), ctx);
      await expect(failing).rejects.toThrow();
      expect(removed).toContain('Location');
      expect(await rowOf('Session', id)).toBeUndefined();
    });

    it('makes at once the writes that work the request left running makes after it ended', async () => {
      const sessions = new Adapter('Session');
      const id = unique('session');
      let later!: Promise<void>;
      await inRequest(async () => {
        later = sleep(50).then(() => sessions.upsert(id, { jti: id, kind: 'Session' }, 600));
      });
      await later;
      expect(await rowOf('Session', id)).toBeDefined();
    });

    it('reads a model once per request and answers copies', async () => {
      const interactions = new Adapter('Interaction');
      const id = unique('int');
      await interactions.upsert(id, { jti: id, kind: 'Interaction', params: { a: 1 } }, 600);
      const queries = await countQueries(db, () =>
        inRequest(async () => {
          const first = await interactions.find(id);
          (first!.params as Record<string, unknown>).a = 2;
          expect(await interactions.find(id)).toEqual({ jti: id, kind: 'Interaction', params: { a: 1 } });
        }),
      );
      expect(queries).toBe(1);
    });

    it('reads again after the request writes the model, and sees the consumption', async () => {
      const codes = new Adapter('AuthorizationCode');
      const id = unique('code');
      await codes.upsert(id, { jti: id, kind: 'AuthorizationCode' }, 600);
      await inRequest(async () => {
        expect((await codes.find(id))?.consumed).toBeUndefined();
        await codes.consume(id);
        expect((await codes.find(id))?.consumed).toEqual(expect.any(Number));
        await codes.upsert(id, { jti: id, kind: 'AuthorizationCode', changed: true }, 600);
        expect(await codes.find(id)).toMatchObject({ changed: true });
        await codes.destroy(id);
        expect(await codes.find(id)).toBeUndefined();
      });
    });

    it('keeps nothing from one request to the next', async () => {
      const grants = new Adapter('Grant');
      const id = unique('grant');
      await grants.upsert(id, { jti: id, kind: 'Grant', v: 1 }, 600);
      await inRequest(async () => expect(await grants.find(id)).toMatchObject({ v: 1 }));
      await grants.upsert(id, { jti: id, kind: 'Grant', v: 2 }, 600);
      await inRequest(async () => expect(await grants.find(id)).toMatchObject({ v: 2 }));
    });
  });
});

describe.skipIf(!usingPostgres)('batched statements of the adapter keep their prepared plan (PostgreSQL)', () => {
  it('writes, reads, consumes and deletes several keys with the generic plan, not a new plan per execution', async () => {
    // One connection, so the session asked about its prepared statements is the one that ran them;
    // a table with statistics, as in production (an empty one plans alike either way).
    const { db: scratch, drop } = await openScratchDatabase({ poolMax: 1 });
    try {
      await migrateToLatest(scratch);
      await scratch.raw(`INSERT INTO oidc_model_instances (model_name, id, payload, expires_at)
        SELECT 'Session', 'seed' || g, '{}'::jsonb, now() + interval '1 day' FROM generate_series(1, 5000) AS g`);
      await scratch.raw('ANALYZE oidc_model_instances');
      const Models = createAdapterFactory(scratch, { findClient: async () => undefined });
      const sessions = new Models('Session');
      const codes = new Models('AuthorizationCode');
      for (let round = 0; round < 12; round += 1) {
        const [a, b, c] = [unique('a'), unique('b'), unique('c')];
        // Three at once: the first goes alone, the two arriving while it runs share the next statement.
        await Promise.all([a, b, c].map((id) => codes.upsert(id, { jti: id }, 600)));
        expect((await Promise.all([a, b, c].map((id) => codes.find(id)))).map((payload) => payload?.jti)).toEqual([a, b, c]);
        await Promise.all([a, b, c].map((id) => codes.consume(id)));
        await Promise.all([sessions.upsert(a, { jti: a }, 600), sessions.destroy(b), sessions.upsert(c, { jti: c }, 600)]);
      }
      const { rows } = await scratch.raw<{ rows: Array<{ name: string; generic_plans: string; custom_plans: string }> }>(
        `SELECT name, generic_plans, custom_plans FROM pg_prepared_statements WHERE name = ANY(?)`,
        [['sesame_oidc_upsert_many', 'sesame_oidc_find_many', 'sesame_oidc_consume_many', 'sesame_oidc_destroy_and_upsert_many']],
      );
      const plans = Object.fromEntries(rows.map((row) => [row.name, { generic: Number(row.generic_plans), custom: Number(row.custom_plans) }]));
      // PostgreSQL makes five plans with the values before it compares them with the generic one.
      for (const name of ['sesame_oidc_upsert_many', 'sesame_oidc_find_many', 'sesame_oidc_consume_many', 'sesame_oidc_destroy_and_upsert_many']) {
        expect(plans[name], name).toBeDefined();
        expect(plans[name]!.custom, name).toBeLessThanOrEqual(5);
        expect(plans[name]!.generic, name).toBeGreaterThanOrEqual(5);
      }
    } finally {
      await drop();
    }
  });
});
