import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { api, createTestApplication, managementToken, startTestSesame, type TestSesame } from '../helpers/server.ts';
import { signInWithLink } from '../helpers/sign-in.ts';
import { startSmtpCapture, type SmtpCapture } from '../helpers/smtp.ts';

const LANDING = 'http://127.0.0.1:5997/landing';
const REDIRECT_URI = 'http://127.0.0.1:5997/callback';

describe(`organization invitations (${databaseKind})`, () => {
  let t: TestSesame;
  let smtp: SmtpCapture;
  let token: string;
  let config: oidc.Configuration;

  beforeAll(async () => {
    smtp = await startSmtpCapture();
    t = await startTestSesame({ SMTP_URL: smtp.url, EMAIL_FROM: 'Sesame <invites@example.test>' });
    token = await managementToken(t);
    const app = await createTestApplication(t, token, REDIRECT_URI);
    config = await oidc.discovery(new URL(t.issuer), app.id, app.secret!, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  afterAll(async () => {
    await t?.close();
    await smtp?.close();
  });

  const post = (path: string, body: unknown) => api(t, 'POST', path, { token, body });

  async function organizationWithJitRole(name: string) {
    const org = (await post('/api/organizations', { name })).body;
    const member = (await post('/api/organization-roles', { name: `member-${org.id}` })).body;
    const admin = (await post('/api/organization-roles', { name: `admin-${org.id}` })).body;
    expect((await api(t, 'PUT', `/api/organizations/${org.id}/jit/roles`, { token, body: { organizationRoleIds: [member.id] } })).status).toBe(200);
    return { org, member, admin };
  }

  /** What the app's landing page does with the mailed link: a sign-in with one_time_token + login_hint. */
  async function acceptFromLink(link: string) {
    const landing = new URL(link);
    expect(landing.origin + landing.pathname).toBe(LANDING);
    const { tokens } = await signInWithLink(t, config, {
      token: landing.searchParams.get('token')!,
      email: landing.searchParams.get('email')!,
      redirectUri: REDIRECT_URI,
      scope: 'openid email urn:logto:scope:organizations urn:logto:scope:organization_roles',
    });
    return tokens;
  }

  it('mails an invite whose link signs the invitee in as a member with the JIT role and the invitation roles', async () => {
    const { org, member, admin } = await organizationWithJitRole('Acme');
    const email = uniqueEmail('invitee');
    const created = await post('/api/organization-invitations', {
      email: email.toUpperCase(),
      organizationId: org.id,
      roles: [admin.id],
      landingUri: LANDING,
      sendEmail: true,
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ email, organizationId: org.id, roles: [admin.id], status: 'Pending', acceptedAt: null });

    const mail = await smtp.waitFor((m) => m.to === email);
    expect(mail.from).toBe('invites@example.test');
    expect(mail.subject).toContain('Acme');
    const link = /http:\/\/127\.0\.0\.1:5997\/landing\?[^\s"<]+/.exec(mail.text)?.[0];
    expect(link).toBe(created.body.link);
    expect(mail.html).toContain(created.body.link.replace(/&/g, '&amp;'));

    const tokens = await acceptFromLink(link!);
    const claims = tokens.claims()!;
    expect(claims.email).toBe(email);
    expect(claims.organizations).toEqual([org.id]);
    expect([...(claims.organization_roles as string[])].sort()).toEqual([`${org.id}:${admin.name}`, `${org.id}:${member.name}`].sort());
    // The same claims are signed by Sesame's keys.
    await jwtVerify(tokens.id_token!, createRemoteJWKSet(new URL(`${t.issuer}/jwks`)), { issuer: t.issuer });

    const after = await api(t, 'GET', `/api/organization-invitations/${created.body.id}`, { token });
    expect(after.body).toMatchObject({ status: 'Accepted', acceptedUserId: claims.sub });
    const orgs = await api(t, 'GET', `/api/users/${claims.sub}/organizations`, { token });
    expect(orgs.body.map((o: { id: string }) => o.id)).toEqual([org.id]);
  });

  it('returns the link without mailing it when sendEmail is off', async () => {
    const { org } = await organizationWithJitRole('Quiet');
    const email = uniqueEmail('quiet');
    const before = smtp.messages.length;
    const created = await post('/api/organization-invitations', { email, organizationId: org.id, landingUri: LANDING });
    expect(created.status).toBe(201);
    expect(created.body.link).toContain(`token=${created.body.token}`);
    expect(created.body.link).toContain(`email=${encodeURIComponent(email)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(smtp.messages.length).toBe(before);
    const listed = await api(t, 'GET', `/api/organization-invitations?organizationId=${org.id}`, { token });
    expect(listed.headers.get('total-number')).toBe('1');
    expect(listed.text).not.toContain(created.body.token);
  });

  it('revokes an invitation so its link no longer signs in, and refuses to revoke an accepted one', async () => {
    const { org } = await organizationWithJitRole('Revoked');
    const email = uniqueEmail('revoked');
    const created = await post('/api/organization-invitations', { email, organizationId: org.id, landingUri: LANDING });
    const revoked = await api(t, 'PUT', `/api/organization-invitations/${created.body.id}/status`, { token, body: { status: 'Revoked' } });
    expect(revoked.status).toBe(200);
    expect(revoked.body.status).toBe('Revoked');
    await expect(acceptFromLink(created.body.link)).rejects.toThrow();

    const other = await post('/api/organization-invitations', { email: uniqueEmail('accepted'), organizationId: org.id, landingUri: LANDING });
    await acceptFromLink(other.body.link);
    const refused = await api(t, 'PUT', `/api/organization-invitations/${other.body.id}/status`, { token, body: { status: 'Revoked' } });
    expect(refused.status).toBe(400);
  });

  it('reads a pending invitation past its expiry as Expired', async () => {
    const { org } = await organizationWithJitRole('Late');
    const created = await post('/api/organization-invitations', { email: uniqueEmail('late'), organizationId: org.id, landingUri: LANDING, expiresIn: 60 });
    t.advanceClock(61);
    try {
      expect((await api(t, 'GET', `/api/organization-invitations/${created.body.id}`, { token })).body.status).toBe('Expired');
      const expired = await api(t, 'GET', `/api/organization-invitations?organizationId=${org.id}&status=Expired`, { token });
      expect(expired.body.map((i: { id: string }) => i.id)).toEqual([created.body.id]);
    } finally {
      t.advanceClock(-61);
    }
  });

  it.each([
    ['an unknown organization', (org: string) => ({ email: 'a@example.test', organizationId: 'nope', landingUri: LANDING }), 404],
    ['an unknown role', (org: string) => ({ email: 'a@example.test', organizationId: org, roles: ['nope'], landingUri: LANDING }), 400],
    ['a plain-http landing page off localhost', (org: string) => ({ email: 'a@example.test', organizationId: org, landingUri: 'http://app.example/landing' }), 400],
    ['a javascript: landing page', (org: string) => ({ email: 'a@example.test', organizationId: org, landingUri: 'javascript:alert(1)' }), 400],
    ['no landing page', (org: string) => ({ email: 'a@example.test', organizationId: org }), 400],
    ['an invalid email', (org: string) => ({ email: 'nope', organizationId: org, landingUri: LANDING }), 400],
  ])('refuses %s', async (_label, body, status) => {
    const { org } = await organizationWithJitRole(`Bad-${Math.random()}`);
    const response = await post('/api/organization-invitations', body(org.id));
    expect(response.status).toBe(status);
    expect(response.body.code).toBeTruthy();
  });

  it('creates nothing when the invitation mail cannot be sent', async () => {
    const broken = await startTestSesame({ SMTP_URL: 'smtp://127.0.0.1:9' });
    try {
      const admin = await managementToken(broken);
      const org = (await api(broken, 'POST', '/api/organizations', { token: admin, body: { name: 'Offline' } })).body;
      const response = await api(broken, 'POST', '/api/organization-invitations', {
        token: admin,
        body: { email: uniqueEmail('offline'), organizationId: org.id, landingUri: LANDING, sendEmail: true },
      });
      expect(response.status).toBe(502);
      expect(response.body.code).toBe('MAIL_NOT_SENT');
      const listed = await api(broken, 'GET', `/api/organization-invitations?organizationId=${org.id}`, { token: admin });
      expect(listed.body).toEqual([]);
    } finally {
      await broken.close();
    }
  });
});
