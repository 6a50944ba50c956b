import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieClient, findForm, formAction } from '../helpers/browser-client.ts';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { api, createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';
import { authorizeUrl, openLink, pressContinue, requestWithHost, signInWithLink, tokenStatus, type Client } from './support.ts';

const REDIRECT_URI = 'http://127.0.0.1:5986/callback';
const APP_ORIGIN = new URL(REDIRECT_URI).origin;

/** A browser that records every Location it is sent, and may forge proxy headers on every request. */
class RecordingBrowser extends CookieClient {
  readonly locations: string[] = [];

  constructor(
    origin: string,
    private readonly forged: Record<string, string> = {},
  ) {
    super(origin);
  }

  override async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    for (const [name, value] of Object.entries(this.forged)) headers.set(name, value);
    const response = await super.request(url, { ...init, headers });
    const location = response.headers.get('location');
    if (location) this.locations.push(new URL(location, new URL(url, this.origin)).toString());
    return response;
  }
}

/** Attacks through the browser: login CSRF, session fixation, clickjacking, open redirects, XSS, dev pages and metrics. */
describe(`web attacks (${databaseKind})`, () => {
  let t: TestSesame;
  let admin: string;
  let app: Client;

  beforeAll(async () => {
    t = await startTestSesame();
    admin = await managementToken(t);
    app = await createTestApplication(t, admin, REDIRECT_URI);
  });
  afterAll(async () => {
    await t?.close();
  });

  const open = (token: string, email: string, browser?: CookieClient) => openLink(t, app, REDIRECT_URI, token, email, { browser });
  const signedIn = (url: URL) => url.origin === APP_ORIGIN && url.searchParams.has('code');
  async function newLink() {
    const email = uniqueEmail();
    const minted = await mintToken(t, admin, { email });
    return { email, minted, flow: await open(minted.token, email) };
  }

  describe('login CSRF', () => {
    const attacks: Array<[string, Record<string, string>, boolean]> = [
      ['a cross-site Origin', { origin: 'https://evil.example' }, true],
      ['Origin null with Sec-Fetch-Site cross-site', { origin: 'null', 'sec-fetch-site': 'cross-site' }, true],
      ['Sec-Fetch-Site same-site (a sibling subdomain)', { origin: 'null', 'sec-fetch-site': 'same-site' }, true],
      // Even from our own origin, a request without the victim's interaction cookie cannot act on it.
      ['no interaction cookie', { origin: 'SELF' }, false],
    ];
    const forms: Array<[string, (flow: Awaited<ReturnType<typeof newLink>>['flow']) => string, string, string]> = [
      ['the hosted confirmation form', (flow) => formAction(flow.html, 'one-time-token'), 'application/x-www-form-urlencoded', ''],
      ['the hosted back form', (flow) => formAction(flow.html, 'abort'), 'application/x-www-form-urlencoded', ''],
      ['the Experience API', () => '/api/experience/one-time-token', 'application/json', '{}'],
    ];

    for (const [formLabel, target, contentType, body] of forms) {
      it.each(attacks)(`refuses a forged post to ${formLabel} with %s, and the sign-in carries on`, async (_label, headers, withCookies) => {
        const { minted, flow } = await newLink();
        const sender = withCookies ? flow.browser : new CookieClient(t.baseUrl);
        const forged = await sender.request(target(flow), {
          method: 'POST',
          headers: { 'content-type': contentType, accept: 'text/html', ...headers, ...(headers.origin === 'SELF' ? { origin: t.baseUrl } : {}) },
          body,
        });
        expect(forged.status).toBe(withCookies ? 403 : 400);
        expect(forged.headers.get('location')).toBeNull();
        expect(await tokenStatus(t, admin, minted.id)).toBe('active');
        // The forged request neither signed anyone in nor ended the victim's sign-in.
        expect(signedIn((await pressContinue(flow)).url)).toBe(true);
      });
    }
  });

  describe('session fixation', () => {
    const sessionOf = (browser: CookieClient) => {
      const jar = (browser as unknown as { cookies: Map<string, { value: string; path: string }> }).cookies;
      return { id: jar.get('_session')?.value, jar };
    };
    async function silentSignIn(browser: CookieClient) {
      const { url } = await authorizeUrl(t, app, REDIRECT_URI, { prompt: 'none' });
      return (await browser.follow(url)).url;
    }

    it('issues a new session id at every sign-in, and the previous id stops working', async () => {
      const email = uniqueEmail('fixation');
      const browser = new CookieClient(t.baseUrl);
      await signInWithLink(t, app, REDIRECT_URI, (await mintToken(t, admin, { email })).token, email, browser);
      const before = sessionOf(browser);
      const stolen = new CookieClient(t.baseUrl, new Map([...before.jar].filter(([name]) => name.startsWith('_session')).map(([n, c]) => [n, { ...c }])));
      expect(before.id).toBeTruthy();
      await signInWithLink(t, app, REDIRECT_URI, (await mintToken(t, admin, { email })).token, email, browser);
      expect(sessionOf(browser).id).toBeTruthy();
      expect(sessionOf(browser).id).not.toBe(before.id);
      expect((await silentSignIn(stolen)).searchParams.get('error')).toBe('login_required');
    });

    it('does not keep a session id planted in the victim’s browser: the attacker’s copy never becomes the victim’s session', async () => {
      const attacker = new CookieClient(t.baseUrl);
      const attackerEmail = uniqueEmail('attacker');
      await signInWithLink(t, app, REDIRECT_URI, (await mintToken(t, admin, { email: attackerEmail })).token, attackerEmail, attacker);
      const planted = sessionOf(attacker);
      // The attacker plants their own (validly signed) session cookie in the victim's browser.
      const victim = new CookieClient(t.baseUrl, new Map([...planted.jar].filter(([name]) => name.startsWith('_session')).map(([n, c]) => [n, { ...c }])));
      const victimEmail = uniqueEmail('victim');
      const signedInVictim = await signInWithLink(t, app, REDIRECT_URI, (await mintToken(t, admin, { email: victimEmail })).token, victimEmail, victim);
      expect(signedIn(signedInVictim.callback)).toBe(true);
      expect(sessionOf(victim).id).toBeTruthy();
      expect(sessionOf(victim).id).not.toBe(planted.id);

      // The attacker's browser, still holding the planted id, does not get a code for anyone.
      const attackerNow = await silentSignIn(attacker);
      expect(attackerNow.searchParams.has('code')).toBe(false);
      expect(attackerNow.searchParams.get('error')).toBe('login_required');
    });

    it('sets the interaction and session cookies HttpOnly, SameSite=Lax and signed', async () => {
      const email = uniqueEmail('cookies');
      const minted = await mintToken(t, admin, { email });
      const browser = new CookieClient(t.baseUrl);
      const started = await browser.request((await authorizeUrl(t, app, REDIRECT_URI, { one_time_token: minted.token, login_hint: email })).url);
      const landing = await browser.request(started.headers.get('location')!);
      const form = findForm(await landing.text(), 'one-time-token');
      const continued = await browser.request(form.action, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.baseUrl },
        body: new URLSearchParams(form.hidden),
      });
      const resumed = await browser.request(continued.headers.get('location')!);
      expect(signedIn(new URL(resumed.headers.get('location')!))).toBe(true);
      const cookies = [...started.headers.getSetCookie(), ...resumed.headers.getSetCookie()].filter((line) => !/expires=Thu, 01 Jan 1970/i.test(line));
      expect(cookies.map((line) => line.split('=')[0])).toEqual(expect.arrayContaining(['_interaction', '_interaction.sig', '_session', '_session.sig']));
      for (const line of cookies) {
        expect(line.toLowerCase(), line).toContain('httponly');
        expect(line.toLowerCase(), line).toContain('samesite=lax');
      }
    });
  });

  describe('clickjacking', () => {
    /** X-Frame-Options DENY, and a CSP that (when it names frame-ancestors at all) allows none. */
    const assertUnframeable = (label: string, response: Response) => {
      expect(response.headers.get('content-type'), label).toMatch(/^text\/html/);
      expect(response.headers.get('x-frame-options'), label).toBe('DENY');
      const ancestors = /frame-ancestors([^;]*)/.exec(response.headers.get('content-security-policy') ?? '')?.[1]?.trim();
      if (ancestors !== undefined) expect(ancestors, label).toBe("'none'");
    };

    it('sends X-Frame-Options DENY and CSP frame-ancestors none on every page Sesame renders', async () => {
      const pages: Array<[string, Response]> = [];
      const html = { accept: 'text/html' };
      const browser = new CookieClient(t.baseUrl);
      pages.push(['home', await browser.request('/', { headers: html })]);

      const { flow } = await newLink();
      pages.push(['the continue page', flow.landing.response]);
      pages.push(['the page for a link opened in another browser', await new CookieClient(t.baseUrl).request(flow.landing.url.pathname, { headers: html })]);
      const wrong = await open('A'.repeat(43), uniqueEmail());
      pages.push(['a link failure page', (await pressContinue(wrong)).response]);
      const noToken = await browser.follow((await authorizeUrl(t, app, REDIRECT_URI)).url);
      pages.push(['the sign-in information page', noToken.response]);
      pages.push(['the OIDC error page', await browser.request(`${t.issuer}/auth?client_id=unknown`, { headers: html })]);
      const signedInBrowser = new CookieClient(t.baseUrl);
      const email = uniqueEmail('pages');
      await signInWithLink(t, app, REDIRECT_URI, (await mintToken(t, admin, { email })).token, email, signedInBrowser);
      pages.push(['the logout confirmation page', await signedInBrowser.request(`${t.issuer}/session/end`, { headers: html })]);
      pages.push(['the logout success page', await browser.request(`${t.issuer}/session/end/success`, { headers: html })]);
      pages.push(['a 404 page', await browser.request('/no-such-page', { headers: html })]);
      pages.push(['a 405 page', await browser.request(formAction(flow.html, 'one-time-token'), { method: 'PUT', headers: html })]);
      pages.push(['the demo page', await browser.request('/demo', { headers: html })]);
      pages.push(['the demo link page', (await browser.postForm('/demo/send', { email: uniqueEmail('demo') })).response]);
      pages.push(['the demo callback error page', await browser.request('/demo/callback?error=access_denied', { headers: html })]);
      const organization = await api(t, 'POST', '/api/organizations', { token: admin, body: { name: 'Framed org' } });
      await api(t, 'POST', '/api/organization-invitations', {
        token: admin,
        body: { email: uniqueEmail('invitee'), organizationId: organization.body.id, landingUri: 'https://app.example/welcome', sendEmail: true },
      });
      const mails = (await (await fetch(`${t.listenUrl}/dev/outbox.json`)).json()).mails as Array<{ id: string }>;
      pages.push(['the dev outbox', await browser.request('/dev/outbox', { headers: html })]);
      pages.push(['a dev outbox mail', await browser.request(`/dev/outbox/${mails[0]!.id}.html`, { headers: html })]);

      for (const [label, response] of pages) {
        assertUnframeable(label, response);
        // The mail preview carries the mail's own CSP; X-Frame-Options DENY covers it.
        if (label !== 'a dev outbox mail') expect(response.headers.get('content-security-policy'), label).toContain("frame-ancestors 'none'");
      }
      // Interaction pages also keep themselves out of caches and referrers.
      for (const response of [flow.landing.response, noToken.response]) {
        expect(response.headers.get('cache-control')).toBe('no-store');
        expect(response.headers.get('referrer-policy')).toBe('no-referrer');
      }
    });

    it('sends the same framing protection on the auto-submitting form pages oidc-provider renders (form_post response, logout)', async () => {
      const email = uniqueEmail('framed');
      const browser = new CookieClient(t.baseUrl);
      await signInWithLink(t, app, REDIRECT_URI, (await mintToken(t, admin, { email })).token, email, browser);
      const formPost = await browser.request((await authorizeUrl(t, app, REDIRECT_URI, { prompt: 'none', response_mode: 'form_post' })).url);
      expect(await formPost.clone().text()).toContain('name="code"');

      const other = uniqueEmail('switch');
      const switching = await openLink(t, app, REDIRECT_URI, (await mintToken(t, admin, { email: other })).token, other, { browser });
      const logoutForm = (await pressContinue(switching)).response;
      expect(await logoutForm.clone().text()).toContain('name="xsrf"');

      // A logout without a session is submitted by the same kind of page.
      const anonymousLogout = await new CookieClient(t.baseUrl).request(`${t.issuer}/session/end`, { headers: { accept: 'text/html' } });
      expect(await anonymousLogout.clone().text()).toContain('name="xsrf"');

      const problems: string[] = [];
      for (const [label, response] of [
        ['the form_post response page', formPost],
        ['the account-switch logout form', logoutForm],
        ['the logout form without a session', anonymousLogout],
      ] as const) {
        try {
          assertUnframeable(label, response);
        } catch (error) {
          problems.push(`${label}: ${(error as Error).message}`);
        }
      }
      expect(problems).toEqual([]);
    });
  });

  describe('open redirects', () => {
    // fetch cannot forge Host (see the next test); these headers it can send.
    const forgedProxyHeaders = {
      'x-forwarded-host': 'evil.example',
      'x-forwarded-proto': 'https',
      forwarded: 'host=evil.example;proto=https',
    };

    it('keeps every Location and redirectTo of every flow on Sesame or a registered URI, even with forged proxy headers', async () => {
      const sesame = new URL(t.baseUrl).origin;
      const registered = [REDIRECT_URI, `${t.baseUrl}/demo/callback`];
      const browsers: RecordingBrowser[] = [];
      const browser = () => {
        const created = new RecordingBrowser(t.baseUrl, forgedProxyHeaders);
        browsers.push(created);
        return created;
      };
      const redirectTos: string[] = [];

      // A link sign-in, then logout back to the app.
      const email = uniqueEmail('redirects');
      const signer = browser();
      const minted = await mintToken(t, admin, { email });
      await pressContinue(await open(minted.token, email, signer));
      const logout = await signer.request(`${t.issuer}/session/end?${new URLSearchParams({ client_id: app.id, post_logout_redirect_uri: REDIRECT_URI })}`);
      const xsrf = /name="xsrf" value="([^"]+)"/.exec(await logout.text())![1]!;
      await signer.follow(`${t.issuer}/session/end/confirm`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: t.baseUrl },
        body: new URLSearchParams({ xsrf, logout: 'yes' }),
      });
      // The Experience API.
      const custom = browser();
      const second = await mintToken(t, admin, { email });
      await open(second.token, email, custom);
      const answer = await custom.request('/api/experience/one-time-token', {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: t.baseUrl },
        body: '{}',
      });
      const { redirectTo } = await answer.json();
      redirectTos.push(redirectTo);
      await custom.follow(redirectTo);
      // The back form from the continue page, from a failure page and from the information page.
      for (const token of ['A'.repeat(43), (await mintToken(t, admin, { email })).token]) {
        const back = browser();
        const flow = await open(token, email, back);
        await back.submitForm(flow.html, 'abort');
      }
      const info = browser();
      const page = await info.follow((await authorizeUrl(t, app, REDIRECT_URI)).url);
      await info.submitForm(await page.response.text(), 'abort');
      // A silent sign-in without a session, and the whole demo.
      await browser().follow((await authorizeUrl(t, app, REDIRECT_URI, { prompt: 'none' })).url);
      const demo = browser();
      const sent = await demo.postForm('/demo/send', { email: uniqueEmail('demo') });
      const link = /href="([^"]+\/demo\/landing[^"]+)"/.exec(await sent.response.text())![1]!.replaceAll('&amp;', '&');
      const landing = await demo.follow(link);
      const callback = await demo.submitForm(await landing.response.text(), 'one-time-token');
      expect(callback.url.pathname).toBe('/demo/callback');
      expect(callback.response.status).toBe(200);

      const locations = [...browsers.flatMap((b) => b.locations), ...redirectTos];
      expect(locations.length).toBeGreaterThan(10);
      const offsite = locations.filter((location) => {
        const url = new URL(location);
        return url.origin !== sesame && !registered.includes(`${url.origin}${url.pathname}`);
      });
      expect(offsite).toEqual([]);
    });

    it('builds no URL from a forged Host header: redirects, redirectTo, form actions and discovery stay on Sesame', async () => {
      const sesame = new URL(t.baseUrl).origin;
      const forged = { host: 'evil.example' };
      const email = uniqueEmail('host');
      const minted = await mintToken(t, admin, { email });
      const { url } = await authorizeUrl(t, app, REDIRECT_URI, { one_time_token: minted.token, login_hint: email });
      const started = await requestWithHost(t.listenUrl, url.slice(t.baseUrl.length), forged);
      const urls: string[] = [String(started.headers.location)];
      const cookie = (started.headers['set-cookie'] ?? []).map((line) => line.split(';')[0]).join('; ');
      const uid = String(started.headers.location).split('/').pop()!;
      const custom = await requestWithHost(t.listenUrl, '/api/experience/one-time-token', {
        ...forged,
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json', origin: t.baseUrl },
        body: '{}',
      });
      expect(custom.status).toBe(200);
      urls.push(JSON.parse(custom.body).redirectTo);

      const other = await mintToken(t, admin, { email });
      const flow = await open(other.token, email);
      const jar = (flow.browser as unknown as { cookies: Map<string, { value: string }> }).cookies;
      const cookies = [...jar].map(([name, { value }]) => `${name}=${value}`).join('; ');
      const form = findForm(flow.html, 'one-time-token');
      const continued = await requestWithHost(t.listenUrl, form.action, {
        ...forged,
        method: 'POST',
        headers: { cookie: cookies, 'content-type': 'application/x-www-form-urlencoded', origin: t.baseUrl },
        body: new URLSearchParams(form.hidden).toString(),
      });
      urls.push(String(continued.headers.location));

      const discovery = JSON.parse((await requestWithHost(t.listenUrl, '/oidc/.well-known/openid-configuration', forged)).body) as Record<string, unknown>;
      urls.push(...Object.values(discovery).filter((value): value is string => typeof value === 'string' && value.startsWith('http')));
      const logout = await requestWithHost(t.listenUrl, '/oidc/session/end', { ...forged, headers: { accept: 'text/html' } });
      urls.push(/action="([^"]+)"/.exec(logout.body)![1]!);

      expect(uid).toBeTruthy();
      const offsite = urls.filter((value) => new URL(value, t.baseUrl).origin !== sesame);
      expect(offsite).toEqual([]);
      expect(urls.join(' ')).not.toContain('evil.example');
    });

    it.each([
      '//evil.example/',
      '///evil.example/',
      '/\\evil.example/',
      '/%2F%2Fevil.example/',
      '/%5Cevil.example/',
      '/oidc//evil.example/',
      '/demo//evil.example',
      '/demo/landing?token=x&email=a@example.test&redirect_uri=https://evil.example/',
      '/interaction/abc/..%2F..%2F%2Fevil.example',
      '/api//evil.example',
      '/static/..%2F..%2Fevil.example',
    ])('never redirects off-site from the path %s', async (path) => {
      const response = await fetch(`${t.listenUrl}${path}`, { redirect: 'manual', headers: { accept: 'text/html' } });
      expect(response.status).toBeLessThan(500);
      const location = response.headers.get('location');
      if (location) expect(new URL(location, t.baseUrl).origin).toBe(new URL(t.baseUrl).origin);
    });
  });

  describe('markup injection', () => {
    it('escapes a login_hint carrying markup on the continue page', async () => {
      const hint = `"><script>alert(1)</script><img src=x onerror=alert(2)>@example.test`;
      const flow = await open((await mintToken(t, admin, { email: uniqueEmail() })).token, hint);
      expect(flow.html).not.toContain('<script>alert(1)');
      expect(flow.html).not.toContain('<img src=x');
      expect(flow.html).toContain('&lt;script&gt;');
    });

    it('escapes markup in an application’s name and in OIDC error pages', async () => {
      const evilName = '<img src=x onerror=alert(document.cookie)>';
      const created = await api(t, 'POST', '/api/applications', {
        token: admin,
        body: { name: evilName, type: 'Traditional', oidcClientMetadata: { redirectUris: [REDIRECT_URI] } },
      });
      const email = uniqueEmail();
      const flow = await openLink(t, { id: created.body.id, secret: created.body.secret }, REDIRECT_URI, (await mintToken(t, admin, { email })).token, email);
      expect(flow.html).not.toContain(evilName);
      expect(flow.html).toContain('&lt;img src=x');

      const errorPage = await fetch(`${t.issuer}/auth?client_id=${encodeURIComponent('<script>alert(1)</script>')}&redirect_uri=${encodeURIComponent('"><script>alert(2)</script>')}`, {
        headers: { accept: 'text/html' },
      });
      expect(errorPage.status).toBe(400);
      expect(await errorPage.text()).not.toMatch(/<script>alert/);
    });
  });

  it('exposes no email, token or code in /metrics after sign-ins', async () => {
    const email = uniqueEmail('metrics');
    const minted = await mintToken(t, admin, { email });
    const flow = await open(minted.token, email);
    const done = await pressContinue(flow);
    const metrics = await (await fetch(`${t.listenUrl}/metrics`)).text();
    expect(metrics).toContain('sesame_sign_ins_total');
    for (const secret of [email, minted.token, minted.id, done.url.searchParams.get('code')!, flow.landing.url.pathname.split('/')[2]!]) {
      expect(metrics).not.toContain(secret);
    }
  });
});

describe(`production deployment (${databaseKind})`, () => {
  const METRICS_TOKEN = 'metrics-token-for-the-security-suite';
  let prod: TestSesame;
  let admin: string;

  beforeAll(async () => {
    prod = await startTestSesame({ NODE_ENV: 'production', METRICS_TOKEN, TRUST_PROXY: 'true' }, { baseUrl: 'https://sesame.example' });
    admin = await managementToken(prod);
  });
  afterAll(async () => {
    await prod?.close();
  });

  it('serves no dev pages with NODE_ENV=production', async () => {
    for (const path of ['/demo', '/demo/', '/demo/landing?token=x&email=a@example.test', '/demo/callback?code=x&state=y', '/dev/outbox', '/dev/outbox.json', '/dev/outbox/1.html']) {
      const response = await fetch(`${prod.listenUrl}${path}`, { redirect: 'manual' });
      expect(response.status, path).toBe(404);
    }
    const send = await fetch(`${prod.listenUrl}/demo/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'email=a@example.test',
    });
    expect(send.status).toBe(404);
    expect(await (await fetch(`${prod.listenUrl}/`)).text()).not.toContain('/demo');
    const apps = await api(prod, 'GET', '/api/applications?page_size=100', { token: admin });
    // No demo application was registered for this deployment (other servers may share a PostgreSQL database).
    expect(apps.text).not.toContain(`${prod.baseUrl}/demo/callback`);
  });

  it('refuses /metrics without the configured METRICS_TOKEN', async () => {
    const attempts: Array<[string, Record<string, string>, string]> = [
      ['no credentials', {}, ''],
      ['a wrong token', { authorization: 'Bearer metrics-token-for-the-security-suitX' }, ''],
      ['a prefix of the token', { authorization: `Bearer ${METRICS_TOKEN.slice(0, -1)}` }, ''],
      ['the token with a suffix', { authorization: `Bearer ${METRICS_TOKEN}x` }, ''],
      ['the token as Basic credentials', { authorization: `Basic ${Buffer.from(`${METRICS_TOKEN}:`).toString('base64')}` }, ''],
      ['the token in the query', {}, `?token=${METRICS_TOKEN}`],
      ['the token as a cookie', { cookie: `token=${METRICS_TOKEN}` }, ''],
      ['a Management API token', { authorization: `Bearer ${admin}` }, ''],
    ];
    for (const [label, headers, query] of attempts) {
      const response = await fetch(`${prod.listenUrl}/metrics${query}`, { headers });
      expect(response.status, label).toBe(401);
      expect(await response.text(), label).not.toContain('http_requests_total');
    }
    const allowed = await fetch(`${prod.listenUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(allowed.status).toBe(200);
    expect(await allowed.text()).toContain('http_requests_total');
  });

  it('builds its URLs from BASE_URL, not from the X-Forwarded-Host a trusted proxy passes on', async () => {
    const forged = { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' };
    const discovery = (await (await fetch(`${prod.listenUrl}/oidc/.well-known/openid-configuration`, { headers: forged })).json()) as Record<string, unknown>;
    const urls = Object.values(discovery).filter((value): value is string => typeof value === 'string' && value.startsWith('http'));
    expect(urls.length).toBeGreaterThan(5);
    for (const url of urls) expect(new URL(url).origin, url).toBe('https://sesame.example');
    const logout = await (await fetch(`${prod.listenUrl}/oidc/session/end`, { headers: { ...forged, accept: 'text/html' } })).text();
    expect(/action="([^"]+)"/.exec(logout)![1]).toMatch(/^https:\/\/sesame\.example\//);
  });

  it('marks the interaction and session cookies Secure on https (behind the trusted proxy)', async () => {
    const app = await createTestApplication(prod, admin, 'https://app.example/callback');
    const email = uniqueEmail('secure');
    const minted = await mintToken(prod, admin, { email });
    const https = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'sesame.example' };
    const browser = new CookieClient(prod.listenUrl);
    const { url } = await authorizeUrl(prod, app, 'https://app.example/callback', { one_time_token: minted.token, login_hint: email });
    const started = await browser.request(url.replace(prod.baseUrl, prod.listenUrl), { headers: https });
    const landing = await browser.request(started.headers.get('location')!, { headers: https });
    const form = findForm(await landing.text(), 'one-time-token');
    const continued = await browser.request(form.action, {
      method: 'POST',
      headers: { ...https, 'content-type': 'application/x-www-form-urlencoded', origin: 'https://sesame.example' },
      body: new URLSearchParams(form.hidden),
    });
    expect(continued.status).toBe(303);
    const resumed = await browser.request(continued.headers.get('location')!.replace(prod.baseUrl, prod.listenUrl), { headers: https });
    expect(resumed.headers.get('location')).toMatch(/^https:\/\/app\.example\/callback\?code=/);
    const cookies = [...started.headers.getSetCookie(), ...resumed.headers.getSetCookie()].filter((line) => !/expires=Thu, 01 Jan 1970/i.test(line));
    expect(cookies.map((line) => line.split('=')[0])).toEqual(expect.arrayContaining(['_interaction', '_session']));
    for (const line of cookies) expect(line.toLowerCase(), line).toMatch(/;\s*secure/);
  });
});
