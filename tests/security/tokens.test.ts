import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieClient, formAction } from '../helpers/browser-client.ts';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { api, createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';
import { comparableHeaders, openLink, pressContinue, signInWithLink, tokenStatus, type Client, type LinkFlow } from './support.ts';

const REDIRECT_URI = 'http://127.0.0.1:5981/callback';
const APP_ORIGIN = new URL(REDIRECT_URI).origin;

/** Attacks on one-time tokens: races, replays, wrong or look-alike emails, forged token strings, enumeration. */
describe(`one-time token attacks (${databaseKind})`, () => {
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

  const open = (token: string, email: string) => openLink(t, app, REDIRECT_URI, token, email);
  const experience = (browser: CookieClient, body: Record<string, unknown> = {}) =>
    browser.request('/api/experience/one-time-token', {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: t.baseUrl },
      body: JSON.stringify(body),
    });
  const verify = (token: string, email: string) => api(t, 'POST', '/api/one-time-tokens/verify', { token: admin, body: { token, email } });
  const signedIn = (result: { url: URL }) => result.url.origin === APP_ORIGIN && result.url.searchParams.has('code');

  it('lets exactly one of 24 parallel redemptions of one token win, across the hosted page, the Experience API and verify', async () => {
    const email = uniqueEmail('race');
    const minted = await mintToken(t, admin, { email });
    const hosted = await Promise.all(Array.from({ length: 8 }, () => open(minted.token, email)));
    const custom = await Promise.all(Array.from({ length: 8 }, () => open(minted.token, email)));
    const [hostedResults, customResults, verifyResults] = await Promise.all([
      Promise.all(hosted.map((flow) => pressContinue(flow))),
      Promise.all(custom.map((flow) => experience(flow.browser))),
      Promise.all(Array.from({ length: 8 }, () => verify(minted.token, email))),
    ]);
    const wins =
      hostedResults.filter((r) => signedIn(r)).length +
      customResults.filter((r) => r.status === 200).length +
      verifyResults.filter((r) => r.status === 200).length;
    expect(wins).toBe(1);
    const refusals = [...hostedResults.map((r) => r.response.status), ...customResults.map((r) => r.status), ...verifyResults.map((r) => r.status)];
    expect(refusals.filter((status) => status === 410)).toHaveLength(23);
    expect(await tokenStatus(t, admin, minted.id)).toBe('consumed');
  });

  it('refuses a consumed token replayed from another browser on every surface, with TOKEN_ALREADY_USED and no code', async () => {
    const email = uniqueEmail('replay');
    const minted = await mintToken(t, admin, { email });
    const first = await open(minted.token, email);
    expect(signedIn(await pressContinue(first))).toBe(true);

    const hosted = await pressContinue(await open(minted.token, email));
    expect(hosted.response.status).toBe(410);
    expect(signedIn(hosted)).toBe(false);
    expect(await hosted.response.text()).toContain('TOKEN_ALREADY_USED');

    const custom = await experience((await open(minted.token, email)).browser, { token: minted.token, email });
    expect(custom.status).toBe(410);
    expect((await custom.json()).code).toBe('TOKEN_ALREADY_USED');

    const verified = await verify(minted.token, email);
    expect(verified.status).toBe(410);
    expect(verified.body.code).toBe('TOKEN_ALREADY_USED');
  });

  it('refuses a token for A presented with login_hint B (hosted page) or email B (Experience API), and leaves it usable by A', async () => {
    const owner = uniqueEmail('owner');
    const intruder = uniqueEmail('intruder');
    const minted = await mintToken(t, admin, { email: owner });

    const hosted = await pressContinue(await open(minted.token, intruder));
    expect(hosted.response.status).toBe(410);
    expect(await hosted.response.text()).toContain('TOKEN_INVALID');

    // A custom UI cannot swap the email either: the body's email must still be the token's.
    const ownerFlow = await open(minted.token, owner);
    const swapped = await experience(ownerFlow.browser, { email: intruder });
    expect(swapped.status).toBe(410);
    expect((await swapped.json()).code).toBe('TOKEN_INVALID');
    expect(await tokenStatus(t, admin, minted.id)).toBe('active');

    expect(signedIn(await pressContinue(ownerFlow))).toBe(true);
  });

  it('treats Admin@… and admin@… as one address: a case variant signs in to the same account and never creates a second one', async () => {
    const email = uniqueEmail('admin');
    const first = await signInWithLink(t, app, REDIRECT_URI, (await mintToken(t, admin, { email })).token, email);
    const shouting = email.toUpperCase();
    const second = await signInWithLink(t, app, REDIRECT_URI, (await mintToken(t, admin, { email: shouting })).token, shouting.replace('ADMIN', 'Admin'));
    expect(signedIn({ url: first.callback })).toBe(true);
    expect(signedIn({ url: second.callback })).toBe(true);
    const users = await api(t, 'GET', `/api/users?search=${encodeURIComponent(email)}`, { token: admin });
    expect(users.body).toHaveLength(1);
    expect(users.body[0].primaryEmail).toBe(email);
  });

  describe('look-alike addresses', () => {
    // Each is a different mailbox from admin-…@example.test, whatever it looks like.
    const lookalikes = (local: string, domain: string) => [
      ['full-width letters', `${local.replace('admin', 'ａｄｍｉｎ')}@${domain}`],
      ['a dotless ı', `${local.replace('admin', 'admın')}@${domain}`],
      ['a Cyrillic а', `${local.replace('admin', 'аdmin')}@${domain}`],
      ['a dotted capital İ', `${local.replace('admin', 'admİn')}@${domain}`],
    ];

    it('refuses full-width, dotless-i, dotted-İ and Cyrillic look-alikes as the login_hint of a token for admin@…', async () => {
      const email = uniqueEmail('admin');
      const [local, domain] = email.split('@') as [string, string];
      const minted = await mintToken(t, admin, { email });
      for (const [label, hint] of lookalikes(local, domain)) {
        const result = await pressContinue(await open(minted.token, hint!));
        expect(result.response.status, label).toBe(410);
        expect(signedIn(result), label).toBe(false);
      }
      expect(await tokenStatus(t, admin, minted.id)).toBe('active');
    });

    it('refuses to mint tokens for full-width, dotless-i, dotted-İ and Cyrillic look-alikes instead of folding them into admin@…', async () => {
      const email = uniqueEmail('admin');
      const [local, domain] = email.split('@') as [string, string];
      for (const [label, lookalike] of lookalikes(local, domain)) {
        const response = await api(t, 'POST', '/api/one-time-tokens', { token: admin, body: { email: lookalike } });
        if (response.status === 201) expect(response.body.email, label).not.toBe(email);
        else expect(response.status, label).toBe(400);
      }
    });

    // U+212A KELVIN SIGN lower-cases to an ASCII "k": the one look-alike String#toLowerCase folds into ASCII.
    const kelvinOf = (email: string) => `\u212A${email.slice(1)}`;

    it('does not mint a token for a Kelvin-sign K (U+212A) address as the ASCII k address', async () => {
      const email = uniqueEmail('kate');
      const response = await api(t, 'POST', '/api/one-time-tokens', { token: admin, body: { email: kelvinOf(email) } });
      // Safe answers: refuse the address, or keep it as the different address it is.
      if (response.status === 201) expect(response.body.email).not.toBe(email);
      else expect(response.status).toBe(400);
    });

    it('refuses a Kelvin-sign K (U+212A) login_hint for a token minted for the ASCII k address', async () => {
      const email = uniqueEmail('kate');
      const minted = await mintToken(t, admin, { email });
      const result = await pressContinue(await open(minted.token, kelvinOf(email)));
      expect(result.response.status).toBe(410);
      expect(signedIn(result)).toBe(false);
    });
  });

  it('refuses CR/LF and Bcc: header injection in an email address at mint, for tokens, invitations and users', async () => {
    const organization = await api(t, 'POST', '/api/organizations', { token: admin, body: { name: 'Injection target' } });
    const payloads = [
      'victim@example.test\r\nBcc: attacker@evil.example',
      'victim@example.test\nBcc:attacker@evil.example',
      'victim@example.test\rCc: attacker@evil.example',
      'victim\r\nBcc: attacker@evil.example@example.test',
      'victim@example.test%0d%0aBcc:attacker@evil.example',
      'victim@example.test, attacker@evil.example',
      'Victim <victim@example.test>\r\nBcc: attacker@evil.example',
    ];
    for (const email of payloads) {
      const token = await api(t, 'POST', '/api/one-time-tokens', { token: admin, body: { email } });
      expect(token.status, JSON.stringify(email)).toBe(400);
      const invitation = await api(t, 'POST', '/api/organization-invitations', {
        token: admin,
        body: { email, organizationId: organization.body.id, landingUri: 'https://app.example/welcome', sendEmail: true },
      });
      expect(invitation.status, JSON.stringify(email)).toBe(400);
      const user = await api(t, 'POST', '/api/users', { token: admin, body: { primaryEmail: email } });
      expect(user.status, JSON.stringify(email)).toBe(400);
    }
    const outbox = await (await fetch(`${t.listenUrl}/dev/outbox.json`)).json();
    expect(JSON.stringify(outbox)).not.toContain('evil.example');
  });

  it('refuses tampered, truncated and padded forms of a token, and the real token still works afterwards', async () => {
    const email = uniqueEmail('tamper');
    const minted = await mintToken(t, admin, { email });
    const real = minted.token;
    const flip = (c: string) => (c === 'A' ? 'B' : 'A');
    const variants = [
      `${real.slice(0, -1)}${flip(real.at(-1)!)}`,
      `${flip(real[0]!)}${real.slice(1)}`,
      `${real.slice(0, 20)}${flip(real[20]!)}${real.slice(21)}`,
      real.slice(0, -1),
      real.slice(0, 22),
      real.slice(1),
      `${real}A`,
      `${real}=`,
      `${real}==`,
      ` ${real}`,
      `${real} `,
      real.toUpperCase(),
      Buffer.from(real, 'base64url').toString('base64'),
      Buffer.from(real, 'base64url').toString('hex'),
      encodeURIComponent(`${real}/`),
    ].filter((variant) => variant !== real);
    const flow = await open(real, email);
    for (const variant of variants) {
      const response = await experience(flow.browser, { token: variant, email });
      expect(response.status, variant).toBe(410);
      expect((await response.json()).code, variant).toBe('TOKEN_INVALID');
      expect((await verify(variant, email)).status, variant).toBe(410);
    }
    expect(await tokenStatus(t, admin, minted.id)).toBe('active');
    expect((await experience(flow.browser, { token: real, email })).status).toBe(200);
  });

  it('refuses an expired token with TOKEN_EXPIRED on every surface and keeps token lifetimes bounded at mint', async () => {
    const email = uniqueEmail('expired');
    const minted = await mintToken(t, admin, { email, expiresIn: 60 });
    const flow = await open(minted.token, email);
    t.advanceClock(61);
    try {
      const hosted = await pressContinue(flow);
      expect(hosted.response.status).toBe(410);
      expect(await hosted.response.text()).toContain('TOKEN_EXPIRED');
      const verified = await verify(minted.token, email);
      expect(verified.status).toBe(410);
      expect(verified.body.code).toBe('TOKEN_EXPIRED');
    } finally {
      t.advanceClock(-61);
    }
    for (const expiresIn of [0, -1, 59, 1e12, 90 * 24 * 3600 * 100]) {
      const response = await api(t, 'POST', '/api/one-time-tokens', { token: admin, body: { email, expiresIn } });
      expect(response.status, String(expiresIn)).toBe(400);
    }
  });

  it('refuses a revoked or deleted token, and a revoked token cannot be reactivated', async () => {
    const email = uniqueEmail('revoked');
    const revoked = await mintToken(t, admin, { email });
    expect((await api(t, 'PUT', `/api/one-time-tokens/${revoked.id}/status`, { token: admin, body: { status: 'revoked' } })).status).toBe(200);
    const reactivate = await api(t, 'PUT', `/api/one-time-tokens/${revoked.id}/status`, { token: admin, body: { status: 'active' } });
    expect(reactivate.status).toBe(400);
    expect(await tokenStatus(t, admin, revoked.id)).toBe('revoked');
    const hosted = await pressContinue(await open(revoked.token, email));
    expect(hosted.response.status).toBe(410);
    expect(signedIn(hosted)).toBe(false);

    const deleted = await mintToken(t, admin, { email });
    expect((await api(t, 'DELETE', `/api/one-time-tokens/${deleted.id}`, { token: admin })).status).toBe(204);
    const custom = await experience((await open(deleted.token, email)).browser);
    expect(custom.status).toBe(410);
    expect((await custom.json()).code).toBe('TOKEN_INVALID');
  });

  it('does not consume a token when a mail scanner GETs or HEADs the link, the hosted page or the form URL', async () => {
    const email = uniqueEmail('scanned');
    const minted = await mintToken(t, admin, { email });
    const flow = await open(minted.token, email);
    const scanner = new CookieClient(t.baseUrl);
    const action = formAction(flow.html, 'one-time-token');
    for (const method of ['GET', 'HEAD']) {
      // The scanner has no cookie of its own; give it the victim's too (a proxy that shares them).
      for (const client of [scanner, flow.browser]) {
        await client.follow(flow.landing.url.toString(), { method });
        const form = await client.request(action, { method });
        expect(form.status, `${method} ${action}`).toBeGreaterThanOrEqual(400);
        expect(form.status).toBeLessThan(500);
      }
    }
    const linkAgain = await openLink(t, app, REDIRECT_URI, minted.token, email, { browser: scanner });
    expect(linkAgain.landing.response.status).toBe(200);
    expect(await tokenStatus(t, admin, minted.id)).toBe('active');
    expect(signedIn(await pressContinue(flow))).toBe(true);
  });

  describe('enumeration', () => {
    it('answers the Experience API identically for a real token with an unknown email and for a wrong token', async () => {
      const unknown = uniqueEmail('nobody');
      const real = await mintToken(t, admin, { email: uniqueEmail('someone') });
      const consumed = await mintToken(t, admin, { email: uniqueEmail('used') });
      await verify(consumed.token, consumed.email);
      const cases: Array<[string, string]> = [
        ['a real token, an unknown email', real.token],
        ['a used token, an unknown email', consumed.token],
        ['a wrong token', 'A'.repeat(43)],
      ];
      const answers = [];
      for (const [label, token] of cases) {
        const flow = await open(token, unknown);
        const response = await experience(flow.browser, { token, email: unknown });
        answers.push({ label, status: response.status, body: await response.text(), headers: comparableHeaders(response.headers) });
      }
      for (const answer of answers.slice(1)) {
        expect({ ...answer, label: '' }, answer.label).toEqual({ ...answers[0]!, label: '' });
      }
      expect(answers[0]!.status).toBe(410);
      // The Management API's verify answers the same way.
      const verifies = await Promise.all(cases.map(([, token]) => verify(token, unknown)));
      expect(new Set(verifies.map((v) => `${v.status} ${v.text}`)).size).toBe(1);
    });

    it('answers the hosted pages identically for a real token with an unknown email and for a wrong token', async () => {
      const unknown = uniqueEmail('nobody');
      const real = await mintToken(t, admin, { email: uniqueEmail('someone') });
      // The interaction id and its CSRF token differ per sign-in by design.
      const normalize = (flow: LinkFlow, html: string) =>
        html.replaceAll(flow.landing.url.pathname.split('/')[2]!, 'UID').replace(/name="csrf" value="[^"]+"/g, 'name="csrf" value="CSRF"');
      const answers = [];
      for (const token of [real.token, 'A'.repeat(43)]) {
        const flow = await open(token, unknown);
        const posted = await pressContinue(flow);
        answers.push({
          landing: { status: flow.landing.response.status, html: normalize(flow, flow.html), headers: comparableHeaders(flow.landing.response.headers) },
          posted: { status: posted.response.status, html: normalize(flow, await posted.response.text()), headers: comparableHeaders(posted.response.headers) },
        });
      }
      expect(answers[1]).toEqual(answers[0]);
      expect(answers[0]!.posted.status).toBe(410);
    });
  });
});
