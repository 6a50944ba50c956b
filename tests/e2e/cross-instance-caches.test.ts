import * as oidc from 'openid-client';
import { describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/index.ts';
import { databaseKind, uniqueEmail, withScratchDatabase } from '../helpers/db.ts';
import { api, createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';
import { discover, signInWithLink } from '../helpers/sign-in.ts';
import { within } from '../helpers/wait.ts';

const REDIRECT_URI = 'http://127.0.0.1:5996/callback';

/**
 * Another instance's change must reach this one's caches within this bound:
 * the trigger's notice takes milliseconds; the TTLs (5 s for applications and
 * hooks, 60 s for accounts) would take longer, so a pass is not the TTL's doing.
 */
const NOTICE_BOUND_MS = 2_000;

const soon = <T>(read: () => Promise<T>, done: (value: T) => boolean) => within(NOTICE_BOUND_MS, read, done);

/** Two instances on one database behind one public URL (A's), each listening on its own port. */
async function withTwoInstances(run: (a: TestSesame, b: TestSesame, db: Database) => Promise<void>): Promise<void> {
  await withScratchDatabase(async (db) => {
    const a = await startTestSesame({}, { db });
    const b = await startTestSesame({}, { db, baseUrl: a.baseUrl });
    try {
      await soon(async () => a.sesame.invalidation.isLive() && b.sesame.invalidation.isLive(), Boolean);
      await run(a, b, db);
    } finally {
      await b.close();
      await a.close();
    }
  });
}

async function clientCredentials(t: TestSesame, client: { id: string; secret: string }) {
  const response = await fetch(`${t.listenUrl}/oidc/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${t.baseUrl}/api`, scope: 'all' }),
  });
  return response.status;
}

/**
 * Signs a new user in on A; `userinfo()` asks B with the access token and
 * answers 'served' or B's refusal.
 */
async function signedInOnA(a: TestSesame, b: TestSesame, label: string) {
  const app = await createTestApplication(a, await managementToken(a), REDIRECT_URI);
  const email = uniqueEmail(label);
  const minted = await mintToken(a, await managementToken(a), { email });
  const { tokens } = await signInWithLink(a, await discover(a, app), { token: minted.token, email, redirectUri: REDIRECT_URI });
  const viaB = await discover(b, app);
  const sub = tokens.claims()!.sub;
  const userinfo = () =>
    oidc.fetchUserInfo(viaB, tokens.access_token, sub).then((info) => (info.email === email ? 'served' : 'wrong user'), (error: unknown) => String((error as Error).message));
  return { sub, userinfo, tokens, viaA: await discover(a, app) };
}

describe(`caches across instances on one database (${databaseKind})`, () => {
  it("a user suspended by plain SQL (as an operator or another process would) loses B's userinfo at once, though B had the account cached", async () => {
    await withTwoInstances(async (a, b, db) => {
      const { sub, userinfo } = await signedInOnA(a, b, 'suspend-sql');
      expect(await userinfo()).toBe('served');
      const cached = await b.sesame.services.accounts.find(sub);
      expect(await b.sesame.services.accounts.find(sub)).toBe(cached);

      await db('users').where({ id: sub }).update({ is_suspended: true });
      const refused = await soon(userinfo, (outcome) => outcome !== 'served');
      expect(refused).not.toBe('served');
      expect(await b.sesame.services.accounts.find(sub)).toMatchObject({ isSuspended: true });
    });
  });

  it("a user suspended through A's Management API is suspended in B's account cache at once", async () => {
    await withTwoInstances(async (a, b) => {
      const created = await api(a, 'POST', '/api/users', { token: await managementToken(a), body: { primaryEmail: uniqueEmail('suspend-api') } });
      const id = created.body.id as string;
      const cached = await b.sesame.services.accounts.find(id);
      expect(await b.sesame.services.accounts.find(id)).toBe(cached);
      expect(cached).toMatchObject({ isSuspended: false });

      const suspended = await api(a, 'PATCH', `/api/users/${id}/is-suspended`, { token: await managementToken(a), body: { isSuspended: true } });
      expect(suspended.status).toBe(200);
      // A's own write is seen by A the moment it returns, before any notice.
      expect(await a.sesame.services.accounts.find(id)).toMatchObject({ isSuspended: true });
      expect(await soon(() => b.sesame.services.accounts.find(id), (user) => user?.isSuspended === true)).toMatchObject({ isSuspended: true });

      expect((await api(a, 'DELETE', `/api/users/${id}`, { token: await managementToken(a) })).status).toBe(204);
      expect(await soon(() => b.sesame.services.accounts.find(id), (user) => user === undefined)).toBeUndefined();
    });
  });

  it("a grant deleted by plain SQL stops B's userinfo at once, though B had the grant cached", async () => {
    await withTwoInstances(async (a, b, db) => {
      const { sub, userinfo } = await signedInOnA(a, b, 'grant-sql');
      // B reads the grant twice (the second from memory).
      expect(await userinfo()).toBe('served');
      expect(await userinfo()).toBe('served');

      // Only the grant goes: the access token's row stays, so only the grant's absence can refuse it.
      const deleted = await db('oidc_model_instances').where({ model_name: 'Grant' }).whereRaw(`payload->>'accountId' = ?`, [sub]).delete();
      expect(deleted).toBe(1);
      const refused = await soon(userinfo, (outcome) => outcome !== 'served');
      expect(refused).not.toBe('served');
    });
  });

  it("an access token revoked on A stops B's userinfo at once, though B had the token cached", async () => {
    await withTwoInstances(async (a, b) => {
      const { userinfo, tokens, viaA } = await signedInOnA(a, b, 'revoke-at');
      expect(await userinfo()).toBe('served');
      expect(await userinfo()).toBe('served');
      await oidc.tokenRevocation(viaA, tokens.access_token, { token_type_hint: 'access_token' });
      expect(await soon(userinfo, (outcome) => outcome !== 'served')).not.toBe('served');
    });
  });

  it("an application's rotated secret and then its deletion on A stop working on B at once", async () => {
    await withTwoInstances(async (a, b) => {
      const admin = await managementToken(a);
      const created = await api(a, 'POST', '/api/applications', {
        token: admin,
        body: { name: 'Backend', type: 'MachineToMachine', managementApiAccess: true },
      });
      expect(created.status).toBe(201);
      const client = { id: created.body.id as string, secret: created.body.secret as string };
      // B now has the application cached.
      expect(await clientCredentials(b, client)).toBe(200);
      expect(await clientCredentials(b, client)).toBe(200);

      const rotated = await api(a, 'POST', `/api/applications/${client.id}/secret`, { token: admin });
      expect(rotated.status).toBe(200);
      expect(await soon(() => clientCredentials(b, client), (status) => status !== 200)).toBe(401);
      const renewed = { id: client.id, secret: rotated.body.secret as string };
      expect(await clientCredentials(b, renewed)).toBe(200);

      expect((await api(a, 'DELETE', `/api/applications/${client.id}`, { token: admin })).status).toBe(204);
      expect(await soon(() => clientCredentials(b, renewed), (status) => status !== 200)).toBe(401);
    });
  });

  it("a hook created on A gets B's events at once, though B had cached that nobody wanted them", async () => {
    await withTwoInstances(async (a, b, db) => {
      const tokenB = await managementToken(b);
      const createUserOnB = () => api(b, 'POST', '/api/users', { token: tokenB, body: { primaryEmail: uniqueEmail('hooked') } });
      // B asks which hooks want User.Created and keeps the answer: none.
      expect((await createUserOnB()).status).toBe(201);

      const hook = await api(a, 'POST', '/api/hooks', {
        token: await managementToken(a),
        // Nothing listens there: the deliveries are queued (and fail), which is all this test looks at.
        body: { name: 'Cross-instance', url: 'http://127.0.0.1:9/hook', events: ['User.Created'] },
      });
      expect(hook.status).toBe(201);
      const queued = await soon(
        async () => {
          await createUserOnB();
          return Number((await db('hook_deliveries').where({ hook_id: hook.body.id }).count({ n: '*' }))[0]!.n);
        },
        (count) => count > 0,
      );
      expect(queued).toBeGreaterThan(0);
    });
  });

  it("sign-in settings changed on A, then by plain SQL, reach B's copy at once, though B had them cached", async () => {
    await withTwoInstances(async (a, b, db) => {
      const tokenB = await managementToken(b);
      const linkLifetimeOnB = async () => (await api(b, 'GET', '/api/sign-in-exp', { token: tokenB })).body.linkLifetimeSeconds as number;
      // B reads the settings and keeps them for 60 s.
      expect(await linkLifetimeOnB()).toBe(600);
      const changed = await api(a, 'PUT', '/api/sign-in-exp', { token: await managementToken(a), body: { linkLifetimeSeconds: 900 } });
      expect(changed.status).toBe(200);
      // Within 1 s, long before B's copy would go stale: only the notice can make B see it.
      expect(await within(1_000, linkLifetimeOnB, (seconds) => seconds === 900)).toBe(900);

      await db('sign_in_settings')
        .where({ id: 1 })
        .update({ settings: db.raw(`jsonb_set(settings, '{linkLifetimeSeconds}', '1200')`) });
      expect(await within(1_000, linkLifetimeOnB, (seconds) => seconds === 1200)).toBe(1200);
    });
  });
});
