import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { migrateToLatest, rollbackLast } from '../../src/db/index.ts';
import { CookieClient, formAction } from '../helpers/browser-client.ts';
import { databaseKind, uniqueEmail, withScratchDatabase } from '../helpers/db.ts';
import { api, createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

const REDIRECT_URI = 'http://127.0.0.1:5999/callback';
const METRICS_TOKEN = 'metrics-token-for-tests-0123456789';

/** Polls until `check` passes (readiness caches its migration check for a few seconds). */
async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (check(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe(`health, readiness and metrics (${databaseKind})`, () => {
  let t: TestSesame;
  let adminToken: string;

  beforeAll(async () => {
    t = await startTestSesame();
    adminToken = await managementToken(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('answers /healthz and /readyz with 200, uncached and without credentials', async () => {
    const health = await fetch(`${t.listenUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(health.headers.get('cache-control')).toBe('no-store');
    expect(await health.json()).toEqual({ status: 'ok' });

    const ready = await fetch(`${t.listenUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.headers.get('cache-control')).toBe('no-store');
    expect(await ready.json()).toEqual({ status: 'ok', checks: { database: 'ok', migrations: 'ok' } });
  });

  it('counts a mint, a sign-in, a refused link and a mail in /metrics, labelled by route pattern only', async () => {
    const app = await createTestApplication(t, adminToken, REDIRECT_URI);
    const config = await oidc.discovery(new URL(t.issuer), app.id, app.secret!, undefined, { execute: [oidc.allowInsecureRequests] });
    const email = uniqueEmail('metrics');
    const minted = await mintToken(t, adminToken, { email });

    // A whole sign-in: authorize → interaction page → confirm → code → tokens.
    const verifier = oidc.randomPKCECodeVerifier();
    const authorize = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid email offline_access',
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      one_time_token: minted.token,
      login_hint: email,
    });
    const browser = new CookieClient(t.baseUrl);
    const landing = await browser.follow(authorize.toString());
    const interactionUid = landing.url.pathname.split('/')[2]!;
    const done = await browser.submitForm(await landing.response.text(), 'one-time-token');
    const code = done.url.searchParams.get('code')!;
    const tokens = await oidc.authorizationCodeGrant(config, done.url, { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });

    // The same link again is refused, and counted as such.
    const other = new CookieClient(t.baseUrl);
    const again = await other.follow(authorize.toString());
    const refused = await other.submitForm(await again.response.text(), 'one-time-token');
    expect(refused.response.status).toBe(410);
    expect((await api(t, 'GET', `/api/one-time-tokens/${minted.id}`, { token: adminToken })).body.status).toBe('consumed');

    // An invitation mail (kept in the dev outbox).
    const org = await api(t, 'POST', '/api/organizations', { token: adminToken, body: { name: 'Metrics Inc' } });
    const invited = await api(t, 'POST', '/api/organization-invitations', {
      token: adminToken,
      body: { email: uniqueEmail('invitee'), organizationId: org.body.id, landingUri: 'http://127.0.0.1:5999/landing', sendEmail: true },
    });
    expect(invited.status).toBe(201);

    const scraped = await fetch(`${t.listenUrl}/metrics`);
    expect(scraped.status).toBe(200);
    expect(scraped.headers.get('content-type')).toContain('text/plain');
    const text = await scraped.text();

    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
    // A token minted directly and one minted for the invitation.
    expect(text).toMatch(/^sesame_one_time_tokens_minted_total 2$/m);
    expect(text).toMatch(/^sesame_sign_ins_total\{method="one_time_token",result="success"\} 1$/m);
    expect(text).toMatch(/^sesame_one_time_tokens_consumed_total\{result="success"\} 1$/m);
    expect(text).toMatch(/^sesame_sign_ins_total\{method="one_time_token",result="token_already_used"\} 1$/m);
    expect(text).toMatch(/^sesame_one_time_tokens_consumed_total\{result="token_already_used"\} 1$/m);
    expect(text).toMatch(/^sesame_mails_total\{result="sent"\} 1$/m);
    expect(text).toContain('# TYPE sesame_rate_limit_hits_total counter');
    expect(text).toMatch(/^sesame_db_pool_used \d+$/m);
    // The server listens for the database's change notices, so its caches are in use.
    expect(text).toMatch(/^sesame_cache_invalidation_live 1$/m);
    expect(text).toMatch(/^sesame_db_pool_free \d+$/m);
    expect(text).toMatch(/^sesame_db_pool_pending \d+$/m);

    for (const route of ['/oidc/auth', '/oidc/auth/:uid', '/interaction/:uid', '/interaction/:uid/one-time-token', '/oidc/token', '/api/one-time-tokens', '/api/one-time-tokens/:id']) {
      expect(text).toContain(`route="${route}"`);
    }
    expect(text).toMatch(/^http_requests_total\{method="POST",route="\/oidc\/token",status="200"\} \d+$/m);
    expect(text).toMatch(/^http_request_duration_seconds_bucket\{le="[\d.]+",method="POST",route="\/oidc\/token"\} \d+$/m);

    const routes = new Set([...text.matchAll(/route="([^"]*)"/g)].map((match) => match[1]!));
    for (const route of routes) expect(route).toMatch(/^(unmatched|\/[A-Za-z0-9/:._-]*)$/);
    for (const secret of [minted.token, minted.id, interactionUid, code, tokens.access_token, tokens.refresh_token!, app.id, app.secret!, org.body.id, email]) {
      expect(text).not.toContain(secret);
    }
  });

  it('turns not ready while a migration is pending, and while the database is gone; /healthz stays up', async () => {
    await withScratchDatabase(async (db) => {
      await migrateToLatest(db);
      const scratch = await startTestSesame({}, { db });
      try {
        expect((await fetch(`${scratch.listenUrl}/readyz`)).status).toBe(200);
        await rollbackLast(db);
        const pending = await eventually(
          () => fetch(`${scratch.listenUrl}/readyz`),
          (response) => response.status === 503,
        );
        expect(pending.status).toBe(503);
        expect(pending.headers.get('cache-control')).toBe('no-store');
        expect(await pending.json()).toEqual({
          code: 'NOT_READY',
          message: '1 database migration is pending.',
          checks: { database: 'ok', migrations: 'pending' },
        });

        await migrateToLatest(db);
        await db.destroy();
        const gone = await fetch(`${scratch.listenUrl}/readyz`);
        expect(gone.status).toBe(503);
        expect(await gone.json()).toMatchObject({ code: 'NOT_READY', checks: { database: 'unreachable', migrations: 'unknown' } });
        expect((await fetch(`${scratch.listenUrl}/healthz`)).status).toBe(200);
      } finally {
        await scratch.close();
      }
    });
  });

  it('requires the bearer token on /metrics when METRICS_TOKEN is set', async () => {
    const guarded = await startTestSesame({ METRICS_TOKEN });
    try {
      const without = await fetch(`${guarded.listenUrl}/metrics`);
      expect(without.status).toBe(401);
      expect(await without.json()).toMatchObject({ code: 'UNAUTHORIZED' });
      const wrong = await fetch(`${guarded.listenUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}x` } });
      expect(wrong.status).toBe(401);
      const right = await fetch(`${guarded.listenUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      expect(right.status).toBe(200);
      expect(await right.text()).toContain('http_requests_total');
      // Probes stay open.
      expect((await fetch(`${guarded.listenUrl}/healthz`)).status).toBe(200);
    } finally {
      await guarded.close();
    }
    expect(() => loadConfig({ METRICS_TOKEN: 'short', SESAME_SECRET: 'x'.repeat(32) })).toThrow(ConfigError);
    expect(() => loadConfig({ METRICS_TOKEN: 'short', SESAME_SECRET: 'x'.repeat(32) })).toThrow(/METRICS_TOKEN/);
  });
});
