import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInviteBackend } from '../../examples/invite-backend/app.ts';
import { CookieClient, formAction } from '../helpers/browser-client.ts';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { api, freePort, managementToken, startTestSesame, type TestSesame } from '../helpers/server.ts';
import { startSmtpCapture, type SmtpCapture } from '../helpers/smtp.ts';

describe(`examples/invite-backend: invitations mailed by your own backend (${databaseKind})`, () => {
  let t: TestSesame;
  let smtp: SmtpCapture;
  let adminToken: string;
  let backend: Awaited<ReturnType<typeof createInviteBackend>>;
  let server: Server;
  let base: string;
  let clockMs = 0;
  let organization: { id: string; name: string };
  let roleName: string;

  beforeAll(async () => {
    [t, smtp] = await Promise.all([startTestSesame(), startSmtpCapture()]);
    adminToken = await managementToken(t);
    const port = await freePort();
    base = `http://localhost:${port}`;
    const created = await api(t, 'POST', '/api/applications', {
      token: adminToken,
      body: { name: 'Invite backend', type: 'Traditional', oidcClientMetadata: { redirectUris: [`${base}/callback`], postLogoutRedirectUris: [] } },
    });
    expect(created.status).toBe(201);

    const name = `Acme ${randomBytes(3).toString('hex')}`;
    const org = await api(t, 'POST', '/api/organizations', { token: adminToken, body: { name } });
    expect(org.status).toBe(201);
    organization = { id: org.body.id, name };
    roleName = `member-${organization.id}`;
    const role = await api(t, 'POST', '/api/organization-roles', { token: adminToken, body: { name: roleName } });
    expect(role.status).toBe(201);
    const jit = await api(t, 'PUT', `/api/organizations/${organization.id}/jit/roles`, { token: adminToken, body: { organizationRoleIds: [role.body.id] } });
    expect(jit.status).toBeLessThan(300);

    backend = await createInviteBackend({
      sesameUrl: t.baseUrl,
      m2m: t.m2m,
      app: { id: created.body.id, secret: created.body.secret },
      baseUrl: base,
      smtpUrl: smtp.url,
      mailFrom: 'Acme <invites@acme.test>',
      cookieKeys: [randomBytes(32).toString('base64url')],
      now: () => Date.now() + clockMs,
    });
    server = backend.app.listen(port, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    backend?.close();
    await smtp?.close();
    await t?.close();
  });

  const invite = (body: unknown) =>
    fetch(`${base}/invite`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('invites by mail, and the mailed link signs the invitee in and into the organization', async () => {
    const email = uniqueEmail('invitee');
    const answer = await invite({ email, organizationId: organization.id });
    const created = (await answer.json()) as Record<string, unknown>;
    expect(answer.status, JSON.stringify(created)).toBe(201);
    expect(created).toMatchObject({ email, organizationId: organization.id, status: 'Pending' });
    expect(created).not.toHaveProperty('link');
    expect(created).not.toHaveProperty('token');

    // The backend mailed the link itself (sendEmail: false: Sesame sent nothing).
    const mail = await smtp.waitFor((m) => m.to === email);
    expect(mail.from).toBe('invites@acme.test');
    expect(mail.subject).toContain(organization.name);
    expect(smtp.messages.filter((m) => m.to === email)).toHaveLength(1);
    const link = /(http:\/\/\S+\/landing\?\S+)/.exec(mail.text)?.[1];
    expect(link, mail.text).toBeTruthy();
    expect(mail.html).toContain('Accept the invitation');
    const linkUrl = new URL(link!);
    expect(linkUrl.origin + linkUrl.pathname).toBe(`${base}/landing`);
    expect(linkUrl.searchParams.get('email')).toBe(email);

    // Follow it: the landing page starts the sign-in with one_time_token + login_hint and PKCE.
    const browser = new CookieClient(base);
    const sesame = browser.atOrigin(t.baseUrl);
    const landing = await browser.follow(link!);
    expect(landing.url.origin + landing.url.pathname).toBe(`${t.issuer}/auth`);
    expect(landing.url.searchParams.get('one_time_token')).toBe(linkUrl.searchParams.get('token'));
    expect(landing.url.searchParams.get('login_hint')).toBe(email);
    expect(landing.url.searchParams.get('code_challenge_method')).toBe('S256');

    const page = await sesame.follow(landing.url.toString());
    const html = await page.response.text();
    expect(html).toContain(email);
    const done = await sesame.submitForm(html, 'one-time-token');
    expect(done.url.origin + done.url.pathname).toBe(`${base}/callback`);

    const callback = await browser.follow(done.url.toString());
    const welcome = await callback.response.text();
    expect(callback.response.status, welcome).toBe(200);
    expect(welcome).toContain(`Welcome, ${email}`);
    expect(welcome).toContain(`data-organization-id="${organization.id}"`);
    expect(welcome).toContain(`${organization.name} (${roleName})`);

    // Sesame recorded the acceptance.
    const listed = await api(t, 'GET', `/api/organization-invitations?organizationId=${organization.id}&email=${encodeURIComponent(email)}`, { token: adminToken });
    expect(listed.body).toMatchObject([{ status: 'Accepted' }]);

    // The same link again, in another browser: the click finds the token used up (Sesame's 410 page).
    const other = new CookieClient(base);
    const again = await other.follow(link!);
    const otherSesame = other.atOrigin(t.baseUrl);
    const againPage = await otherSesame.follow(again.url.toString());
    const used = await otherSesame.submitForm(await againPage.response.text(), 'one-time-token');
    expect(used.response.status).toBe(410);
    expect(await used.response.text()).toContain('TOKEN_ALREADY_USED');
  });

  it('refuses a callback without the signed cookie, and a forged cookie', async () => {
    const browser = new CookieClient(base);
    const bare = await browser.follow('/callback?code=x&state=y');
    expect(bare.response.status).toBe(400);
    const forged = await browser.follow('/callback?code=x&state=y', {
      headers: { cookie: `invite_flow=${Buffer.from(JSON.stringify({ verifier: 'v', state: 'y' })).toString('base64url')}` },
    });
    expect(forged.response.status).toBe(400);
    expect(await forged.response.text()).toContain('No sign-in in progress');
  });

  it('answers 400 for bad input and passes Sesame’s refusal on', async () => {
    expect((await invite({ email: 'x@example.com' })).status).toBe(400);
    const unknownOrg = await invite({ email: uniqueEmail('nobody'), organizationId: 'no-such-organization' });
    expect(unknownOrg.status).toBeGreaterThanOrEqual(400);
    expect(unknownOrg.status).toBeLessThan(500);
    expect(((await unknownOrg.json()) as { code?: string }).code).toBeTruthy();
  });

  it('reuses the Management API token and renews it shortly before it expires', async () => {
    const first = await backend.managementToken.get();
    const fetched = backend.managementToken.fetched;
    expect(await backend.managementToken.get()).toBe(first);
    expect(backend.managementToken.fetched).toBe(fetched);
    const lifetime = (JSON.parse(Buffer.from(first.split('.')[1] ?? '', 'base64url').toString() || '{}') as { exp?: number; iat?: number }) ?? {};
    // Move the clock to within the renewal margin (60 s) of the token's expiry.
    clockMs += ((lifetime.exp ?? 0) - (lifetime.iat ?? 0) || 3600) * 1000 - 30_000;
    const renewed = await backend.managementToken.get();
    expect(backend.managementToken.fetched).toBe(fetched + 1);
    expect(renewed).not.toBe(first);
    // The renewed token works.
    expect((await api(t, 'GET', `/api/organizations/${organization.id}`, { token: renewed })).status).toBe(200);
  });
});
