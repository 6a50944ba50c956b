import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/index.ts';
import { counterKey } from '../../src/ratelimit/index.ts';
import { CookieClient, findForm } from '../helpers/browser-client.ts';
import { databaseKind, openOwnDatabase, uniqueEmail, usingPostgres } from '../helpers/db.ts';
import { api, createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';
import { openLink, type Client } from '../security/support.ts';

const REDIRECT_URI = 'http://127.0.0.1:5994/callback';

/** Small limits so the tests stay quick; TRUST_PROXY so each test can speak from its own address. */
const LIMITS = {
  TRUST_PROXY: 'true',
  RATE_LIMIT_TOKEN_MINT_PER_CLIENT: '10/1h',
  RATE_LIMIT_VERIFICATION_PER_IP: '3/1h',
  RATE_LIMIT_EMAIL_SEND_PER_EMAIL: '10/1h',
  RATE_LIMIT_EMAIL_SEND_PER_IP: '100/1h',
  RATE_LIMIT_PASSWORD_PER_IP_EMAIL: '3/1h',
  AUTO_BAN_AFTER: '3/1h',
  BAN_CACHE_SECONDS: '1',
};

describe(`rate limits over HTTP (${databaseKind})`, () => {
  let isolated: { db: Database; close: () => Promise<void> };
  let t: TestSesame;
  let admin: string;
  let app: Client;

  beforeAll(async () => {
    isolated = await openOwnDatabase();
    t = await startTestSesame(LIMITS, { db: isolated.db });
    admin = await managementToken(t);
    app = await createTestApplication(t, admin, REDIRECT_URI);
  });
  afterAll(async () => {
    await t?.close();
    await isolated?.close();
  });

  /** A browser on the hosted page of a sign-in (opened from 127.0.0.1); the link's token does not matter. */
  const interaction = async (on = t) => (await openLink(on, app, REDIRECT_URI, 'whatever', uniqueEmail('rl'))).browser;

  /** The Experience API call of a custom sign-in UI, from `ip` (the trusted proxy's X-Forwarded-For). */
  async function verify(browser: CookieClient, body: Record<string, string>, forwardedFor?: string) {
    const response = await browser.request('/api/experience/one-time-token', {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: t.baseUrl, ...(forwardedFor && { 'x-forwarded-for': forwardedFor }) },
      body: JSON.stringify(body),
    });
    return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
  }
  const wrong = (browser: CookieClient, ip: string) => verify(browser, { token: 'not-a-real-token', email: 'x@example.test' }, ip);

  const limitHeaders = (headers: Headers) => ({
    limit: headers.get('x-ratelimit-limit'),
    remaining: headers.get('x-ratelimit-remaining'),
    reset: Number(headers.get('x-ratelimit-reset')),
  });

  /** A backend's Management API client (created with `adminToken`) and its access token. */
  async function backendClient(on: TestSesame, adminToken: string) {
    const backend = await api(on, 'POST', '/api/applications', {
      token: adminToken,
      body: { name: 'Mailer backend', type: 'MachineToMachine', managementApiAccess: true },
    });
    return { id: String(backend.body.id), token: await managementToken(on, { id: backend.body.id, secret: backend.body.secret }) };
  }

  /** Mints `count` tokens one after another; each answer counts down from a fresh quota of `rate` whose window started now. */
  async function mintCountingDown(on: TestSesame, token: string, rate: { points: number; seconds: number }, count: number) {
    const started = Math.floor(Date.now() / 1000);
    for (let n = 1; n <= count; n += 1) {
      const minted = await api(on, 'POST', '/api/one-time-tokens', { token, body: { email: uniqueEmail('mint') } });
      expect(minted.status).toBe(201);
      const headers = limitHeaders(minted.headers);
      expect(headers).toMatchObject({ limit: String(rate.points), remaining: String(rate.points - n) });
      expect(headers.reset).toBeGreaterThanOrEqual(started + rate.seconds);
      expect(headers.reset).toBeLessThanOrEqual(started + rate.seconds + 5);
    }
  }

  it('sends ten sign-in mails an hour to one address and refuses the eleventh, for unknown addresses alike', async () => {
    for (const email of [uniqueEmail('often'), uniqueEmail('unknown-often')]) {
      const browser = await interaction();
      const send = () =>
        browser.request('/api/experience/magic-link', {
          method: 'POST',
          headers: { 'content-type': 'application/json', origin: t.baseUrl, 'x-forwarded-for': '198.51.100.40' },
          body: JSON.stringify({ email }),
        });
      for (let n = 1; n <= 10; n += 1) {
        const response = await send();
        expect(response.status, `mail ${n}`).toBe(200);
        expect(limitHeaders(response.headers)).toMatchObject({ limit: '10', remaining: String(10 - n) });
      }
      const refused = await send();
      expect(refused.status).toBe(429);
      const body = (await refused.json()) as { code: string; retryAfter: number };
      expect(body).toMatchObject({ code: 'RATE_LIMITED' });
      expect(Number(refused.headers.get('retry-after'))).toBe(body.retryAfter);
    }
  });

  it('counts wrong passwords per address and email; a right one gives its point back', async () => {
    const email = uniqueEmail('pwd-rl');
    await api(t, 'PUT', '/api/sign-in-exp', { token: admin, body: { methods: { password: true } } });
    await api(t, 'POST', '/api/users', { token: admin, body: { primaryEmail: email, password: 'the right password' } });
    const browser = await interaction();
    const attempt = (password: string) =>
      browser.request('/api/experience/password', {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: t.baseUrl, 'x-forwarded-for': '198.51.100.41' },
        body: JSON.stringify({ email, password }),
      });
    expect((await attempt('wrong one 1')).status).toBe(401);
    expect((await attempt('wrong one 2')).status).toBe(401);
    expect((await attempt('the right password')).status).toBe(200);
    const again = await interaction();
    const third = await again.request('/api/experience/password', {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: t.baseUrl, 'x-forwarded-for': '198.51.100.41' },
      body: JSON.stringify({ email, password: 'wrong one 3' }),
    });
    expect(third.status).toBe(401);
    const refused = await again.request('/api/experience/password', {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: t.baseUrl, 'x-forwarded-for': '198.51.100.41' },
      body: JSON.stringify({ email, password: 'the right password' }),
    });
    expect(refused.status).toBe(429);
  });

  it('lets a Management API client mint ten tokens an hour, counting down in the headers, and refuses the eleventh with 429', async () => {
    const { token } = await backendClient(t, admin);
    await mintCountingDown(t, token, { points: 10, seconds: 3600 }, 10);
    const refused = await api(t, 'POST', '/api/one-time-tokens', { token, body: { email: uniqueEmail('mint') } });
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ code: 'RATE_LIMITED', retryAfter: expect.any(Number) });
    expect(refused.body.retryAfter).toBeGreaterThan(3590);
    expect(refused.body.retryAfter).toBeLessThanOrEqual(3600);
    expect(refused.headers.get('retry-after')).toBe(String(refused.body.retryAfter));
    expect(limitHeaders(refused.headers)).toMatchObject({ limit: '10', remaining: '0' });
    // Nothing was minted by the refused call.
    const listed = await api(t, 'GET', '/api/one-time-tokens?page_size=100', { token });
    expect(Number(listed.headers.get('total-number'))).toBeGreaterThanOrEqual(10);

    // The quota is the client's: another client still mints; and a client's refusals never ban its address.
    for (let n = 0; n < 3; n += 1) expect((await api(t, 'POST', '/api/one-time-tokens', { token, body: { email: uniqueEmail('mint') } })).status).toBe(429);
    expect((await api(t, 'POST', '/api/one-time-tokens', { token: admin, body: { email: uniqueEmail('mint') } })).status).toBe(201);
    expect((await api(t, 'GET', '/api/banned-ips', { token: admin })).body).toEqual([]);
    expect(await (await fetch(`${t.listenUrl}/metrics`)).text()).toContain('sesame_rate_limit_hits_total{limit="tokenMint"} 4');
  });

  it('leases the default mint quota (600/min): the headers count down by one per mint; on PostgreSQL the shared counter takes six points per lease', async () => {
    const leased = await startTestSesame({ ...LIMITS, RATE_LIMIT_TOKEN_MINT_PER_CLIENT: '600/1m' }, { db: isolated.db, baseUrl: t.baseUrl });
    const other = usingPostgres ? await startTestSesame({ ...LIMITS, RATE_LIMIT_TOKEN_MINT_PER_CLIENT: '600/1m' }, { db: isolated.db, baseUrl: t.baseUrl }) : undefined;
    try {
      const backend = await backendClient(leased, await managementToken(leased));
      await mintCountingDown(leased, backend.token, { points: 600, seconds: 60 }, 7);
      if (!other) return;
      // Two leases of six in the shared counter; the second instance counts the first's five unused points as used.
      const row = await isolated.db('rate_limits').where({ key: `tokenMint:client:${counterKey('client', { ip: '', clientId: backend.id })}` }).first('points');
      expect(row).toEqual({ points: 12 });
      const elsewhere = await api(other, 'POST', '/api/one-time-tokens', { token: backend.token, body: { email: uniqueEmail('lease') } });
      expect(elsewhere.status).toBe(201);
      expect(limitHeaders(elsewhere.headers)).toMatchObject({ limit: '600', remaining: String(600 - 18 + 5) });
    } finally {
      await other?.close();
      await leased.close();
    }
  });

  it('counts failed verifications per address and answers the fourth with 429: JSON on the Experience API, a page on the hosted form', async () => {
    const ip = '198.51.100.10';
    const browser = await interaction();
    for (const remaining of ['2', '1', '0']) {
      const failed = await wrong(browser, ip);
      expect(failed.status).toBe(410);
      expect(failed.body.code).toBe('TOKEN_INVALID');
      expect(limitHeaders(failed.headers)).toMatchObject({ limit: '3', remaining });
    }
    const refused = await wrong(browser, ip);
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ code: 'RATE_LIMITED', retryAfter: expect.any(Number) });
    expect(Number(refused.headers.get('retry-after'))).toBe(refused.body.retryAfter);

    const page = await openLink(t, app, REDIRECT_URI, 'whatever', uniqueEmail('rl'));
    const hosted = findForm(page.html, 'one-time-token');
    const form = await page.browser.request(hosted.action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.baseUrl, 'x-forwarded-for': ip, accept: 'text/html' },
      body: new URLSearchParams(hosted.hidden),
    });
    expect(form.status).toBe(429);
    expect(form.headers.get('content-type')).toContain('text/html');
    expect(Number(form.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await form.text()).toContain('RATE_LIMITED');
  });

  it('gives the point back when a verification succeeds, so only failures count', async () => {
    const ip = '198.51.100.20';
    const browser = await interaction();
    expect(limitHeaders((await wrong(browser, ip)).headers).remaining).toBe('2');
    const email = uniqueEmail('ok');
    const minted = await mintToken(t, admin, { email });
    const signedIn = await verify((await openLink(t, app, REDIRECT_URI, minted.token, email)).browser, { token: minted.token, email }, ip);
    expect(signedIn.status).toBe(200);
    expect(limitHeaders(signedIn.headers).remaining).toBe('2');
    expect(limitHeaders((await wrong(browser, ip)).headers).remaining).toBe('1');
  });

  it('bans an address after three refusals: 403 IP_BANNED on every surface but health, listed as automatic; other addresses go on', async () => {
    const ip = '203.0.113.50';
    const browser = await interaction();
    for (let n = 0; n < 3; n += 1) expect((await wrong(browser, ip)).status).toBe(410);
    for (let n = 0; n < 3; n += 1) expect((await wrong(browser, ip)).status).toBe(429);

    const banned = await wrong(browser, ip);
    expect(banned.status).toBe(403);
    expect(banned.body).toMatchObject({ code: 'IP_BANNED' });
    const from = { headers: { 'x-forwarded-for': ip } };
    expect((await fetch(`${t.listenUrl}/`, from)).status).toBe(403);
    expect((await fetch(`${t.listenUrl}/oidc/.well-known/openid-configuration`, from)).status).toBe(403);
    expect((await api(t, 'GET', '/api/banned-ips', { token: admin, ...from })).status).toBe(403);
    expect((await fetch(`${t.listenUrl}/healthz`, from)).status).toBe(200);
    expect((await fetch(`${t.listenUrl}/readyz`, from)).status).toBe(200);

    const listed = await api(t, 'GET', '/api/banned-ips', { token: admin });
    const ban = (listed.body as Array<Record<string, unknown>>).find((entry) => entry.ip === ip);
    expect(ban).toMatchObject({ source: 'automatic', createdBy: null, reason: expect.stringContaining('3 rate-limit refusals') });
    const hours = (Date.parse(String(ban!.expiresAt)) - Date.now()) / 3600_000;
    expect(hours).toBeGreaterThan(23.9);
    expect(hours).toBeLessThanOrEqual(24);

    expect((await wrong(browser, '203.0.113.51')).status).toBe(410);
  });

  it('believes X-Forwarded-For only behind TRUST_PROXY, and then only the entry the proxy added', async () => {
    // Behind the trusted proxy, a client-written first entry changes nothing: the last entry is counted.
    const browser = await interaction();
    for (const spoofed of ['1.1.1.1', '2.2.2.2', '3.3.3.3']) expect((await wrong(browser, `${spoofed}, 198.51.100.30`)).status).toBe(410);
    expect((await wrong(browser, '4.4.4.4, 198.51.100.30')).status).toBe(429);
    expect(limitHeaders((await wrong(browser, '198.51.100.31')).headers).remaining).toBe('2');

    // Without TRUST_PROXY, every X-Forwarded-For is the same client: the socket's address.
    const direct = await startTestSesame({ ...LIMITS, TRUST_PROXY: 'false', AUTO_BAN_AFTER: 'off' }, { db: isolated.db });
    try {
      const viaDirect = await interaction(direct);
      const post = (ip: string) =>
        viaDirect.request('/api/experience/one-time-token', {
          method: 'POST',
          headers: { 'content-type': 'application/json', origin: direct.baseUrl, 'x-forwarded-for': ip },
          body: JSON.stringify({ token: 'not-a-real-token', email: 'x@example.test' }),
        });
      for (const ip of ['198.51.100.41', '198.51.100.42', '198.51.100.43']) expect((await post(ip)).status).toBe(410);
      expect((await post('198.51.100.44')).status).toBe(429);
    } finally {
      await direct.close();
    }
  });

  it('counts an IPv6 client by its /64, so rotating addresses within it gains nothing', async () => {
    const browser = await interaction();
    for (const ip of ['2001:db8:7:7::1', '2001:db8:7:7::2', '2001:db8:7:7:ffff:ffff:ffff:ffff']) expect((await wrong(browser, ip)).status).toBe(410);
    expect((await wrong(browser, '2001:DB8:7:7:0:0:0:abcd')).status).toBe(429);
    expect((await wrong(browser, '2001:db8:7:8::1')).status).toBe(410);
  });

  it.skipIf(!usingPostgres)('shares the counters between two instances on one PostgreSQL database', async () => {
    const other = await startTestSesame(LIMITS, { db: isolated.db, baseUrl: t.baseUrl });
    try {
      const ip = '198.51.100.60';
      const onA = await interaction();
      const onB = onA.atOrigin(other.listenUrl);
      expect(limitHeaders((await wrong(onA, ip)).headers).remaining).toBe('2');
      expect(limitHeaders((await wrong(onB, ip)).headers).remaining).toBe('1');
      expect(limitHeaders((await wrong(onA, ip)).headers).remaining).toBe('0');
      expect((await wrong(onB, ip)).status).toBe(429);
      expect((await wrong(onA, ip)).status).toBe(429);
      // The counters are in the rate_limits table, without any email address in their keys.
      const keys = (await isolated.db('rate_limits').pluck('key')) as string[];
      expect(keys).toContain(`verification:ip:${ip}`);
      expect(keys.some((key) => key.includes('@'))).toBe(false);
    } finally {
      await other.close();
    }
  });
});
