import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import * as oidc from 'openid-client';
import { describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/index.ts';
import { CookieClient, findForm } from '../helpers/browser-client.ts';
import { databaseKind, uniqueEmail, withScratchDatabase } from '../helpers/db.ts';
import { api, createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';
import { discover } from '../helpers/sign-in.ts';

const REDIRECT_URI = 'http://127.0.0.1:5995/callback';

/** Two instances on one database behind one public URL (A's), each listening on its own port. */
async function twoInstances(db: Database, keyPollMs = 100): Promise<[TestSesame, TestSesame]> {
  const a = await startTestSesame({}, { db, keyPollMs });
  const b = await startTestSesame({}, { db, keyPollMs, baseUrl: a.baseUrl });
  return [a, b];
}

async function jwksOf(t: TestSesame): Promise<JSONWebKeySet> {
  return (await fetch(`${t.listenUrl}/oidc/jwks`)).json() as Promise<JSONWebKeySet>;
}

async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe(`several instances on one database (${databaseKind})`, () => {
  it('finishes a sign-in started on instance A on instance B, refreshes on A and force-logs-out through B', async () => {
    await withScratchDatabase(async (db) => {
      const [a, b] = await twoInstances(db);
      try {
        // Both instances serve the same issuer state, but each has its own base URL here,
        // so the client talks to each through its own discovery document.
        const admin = await managementToken(a);
        const app = await createTestApplication(a, admin, REDIRECT_URI);
        const [viaA, viaB] = [await discover(a, app), await discover(b, app)];
        const email = uniqueEmail('scale');
        const minted = await mintToken(b, await managementToken(b), { email });

        const verifier = oidc.randomPKCECodeVerifier();
        const url = oidc.buildAuthorizationUrl(viaA, {
          redirect_uri: REDIRECT_URI,
          scope: 'openid email offline_access',
          prompt: 'consent',
          code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          one_time_token: minted.token,
          login_hint: email,
        });
        // The interaction starts on A ...
        const onA = new CookieClient(a.listenUrl);
        const landing = await onA.follow(url.toString());
        const page = await landing.response.text();
        expect(page).toContain('Continue as');

        // ... and the same browser's next requests reach B (the load balancer's choice).
        const onB = onA.atOrigin(b.listenUrl);
        const form = findForm(page, 'one-time-token');
        const confirmed = await onB.request(form.action, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', origin: a.baseUrl },
          body: new URLSearchParams(form.hidden),
        });
        expect(confirmed.status).toBe(303);
        const resume = new URL(confirmed.headers.get('location')!);
        const done = await onB.follow(`${b.listenUrl}${resume.pathname}`);
        expect(done.url.origin + done.url.pathname).toBe(REDIRECT_URI);

        // B issued the code; A redeems it.
        const code = done.url.searchParams.get('code')!;
        const tokenAtA = await fetch(`${a.listenUrl}/oidc/token`, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: `Basic ${Buffer.from(`${app.id}:${app.secret}`).toString('base64')}`,
          },
          body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier }),
        });
        expect(tokenAtA.status).toBe(200);
        const tokens = (await tokenAtA.json()) as { refresh_token: string; access_token: string; id_token: string };

        // Refresh alternates between instances and rotates across them (replaying a spent
        // refresh token would, rightly, revoke the whole grant: other tests cover that).
        const refreshedAtB = await oidc.refreshTokenGrant(viaB, tokens.refresh_token);
        const refreshedAtA = await oidc.refreshTokenGrant(viaA, refreshedAtB.refresh_token!);
        expect(refreshedAtA.refresh_token).not.toBe(refreshedAtB.refresh_token);
        const sub = JSON.parse(Buffer.from(tokens.id_token.split('.')[1]!, 'base64url').toString()).sub as string;

        // Force logout through B ends what A issued.
        const sessions = await api(a, 'GET', `/api/users/${sub}/sessions`, { token: admin });
        expect(sessions.body).toHaveLength(1);
        expect((await api(b, 'DELETE', `/api/users/${sub}/sessions`, { token: await managementToken(b) })).status).toBe(204);
        await expect(oidc.refreshTokenGrant(viaA, refreshedAtA.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
        expect((await api(a, 'GET', `/api/users/${sub}/sessions`, { token: admin })).body).toEqual([]);
      } finally {
        await a.close();
        await b.close();
      }
    });
  });

  it('rotates signing and cookie keys on one instance; the other picks them up, and old tokens verify until retired', async () => {
    await withScratchDatabase(async (db) => {
      const [a, b] = await twoInstances(db);
      try {
        const oldAdmin = await managementToken(a);
        const app = await createTestApplication(a, oldAdmin, REDIRECT_URI);
        const viaA = await discover(a, app);
        const email = uniqueEmail('rotate');
        const verifier = oidc.randomPKCECodeVerifier();
        const url = oidc.buildAuthorizationUrl(viaA, {
          redirect_uri: REDIRECT_URI,
          scope: 'openid email',
          code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          one_time_token: (await mintToken(a, oldAdmin, { email })).token,
          login_hint: email,
        });
        const browser = new CookieClient(a.listenUrl);
        const landing = await browser.follow(url.toString());
        const done = await browser.submitForm(await landing.response.text(), 'one-time-token');
        const oldIdToken = (await oidc.authorizationCodeGrant(viaA, done.url, { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck })).id_token!;
        const before = await jwksOf(b);
        expect(before.keys).toHaveLength(2);

        const rotated = await api(a, 'POST', '/api/configs/oidc/keys/rotate', { token: oldAdmin });
        expect(rotated.status).toBe(201);
        expect(rotated.body).toHaveLength(4);
        expect(rotated.body.filter((key: { current: boolean }) => key.current)).toHaveLength(2);
        const cookieRotation = await api(a, 'POST', '/api/configs/oidc/cookie-keys/rotate', { token: oldAdmin });
        expect(cookieRotation.status).toBe(204);

        // B picks the new key set up by itself.
        const after = await waitFor(() => jwksOf(b), (jwks) => jwks.keys.length === 4, 'B to publish the rotated keys');
        const newAdmin = await managementToken(b);
        const newKid = JSON.parse(Buffer.from(newAdmin.split('.')[0]!, 'base64url').toString()).kid as string;
        const oldKid = JSON.parse(Buffer.from(oldAdmin.split('.')[0]!, 'base64url').toString()).kid as string;
        expect(newKid).not.toBe(oldKid);
        expect(after.keys.map((key) => key.kid)).toEqual(expect.arrayContaining([newKid, oldKid]));

        // Tokens signed before the rotation still verify, and both kinds work on both instances.
        await jwtVerify(oldIdToken, createLocalJWKSet(after), { issuer: a.issuer });
        expect((await api(b, 'GET', '/api/configs/oidc/keys', { token: oldAdmin })).status).toBe(200);
        expect((await api(a, 'GET', '/api/configs/oidc/keys', { token: newAdmin })).status).toBe(200);

        // The session cookie signed with the old cookie key still gives a silent sign-in.
        const silent = oidc.buildAuthorizationUrl(viaA, {
          redirect_uri: REDIRECT_URI,
          scope: 'openid',
          prompt: 'none',
          code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
          code_challenge_method: 'S256',
        });
        expect((await browser.atOrigin(b.listenUrl).follow(silent.toString().replace(a.baseUrl, b.listenUrl))).url.searchParams.get('code')).toBeTruthy();

        // The current keys cannot be retired; the previous ones can, and then old tokens stop verifying.
        expect((await api(a, 'DELETE', `/api/configs/oidc/keys/${newKid}`, { token: newAdmin })).status).toBe(400);
        const previous = (rotated.body as Array<{ kid: string; current: boolean }>).filter((key) => !key.current);
        for (const key of previous) {
          expect((await api(a, 'DELETE', `/api/configs/oidc/keys/${key.kid}`, { token: newAdmin })).status).toBe(204);
        }
        expect((await api(a, 'DELETE', `/api/configs/oidc/keys/${previous[0]!.kid}`, { token: newAdmin })).status).toBe(404);
        const retired = await waitFor(() => jwksOf(b), (jwks) => jwks.keys.length === 2, 'B to drop the retired keys');
        await expect(jwtVerify(oldIdToken, createLocalJWKSet(retired), { issuer: a.issuer })).rejects.toThrow();
        await waitFor(
          async () => (await api(b, 'GET', '/api/configs/oidc/keys', { token: oldAdmin })).status,
          (status) => status === 401,
          'B to refuse the token signed with a retired key',
        );
        expect((await api(b, 'GET', '/api/configs/oidc/keys', { token: newAdmin })).status).toBe(200);
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
});
