import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { api, createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';
import { signInWithLink } from '../helpers/sign-in.ts';

const REDIRECT_URI = 'http://127.0.0.1:5996/callback';

describe(`just-in-time organization provisioning on sign-in (${databaseKind})`, () => {
  let t: TestSesame;
  let token: string;
  let config: oidc.Configuration;

  beforeAll(async () => {
    t = await startTestSesame();
    token = await managementToken(t);
    const app = await createTestApplication(t, token, REDIRECT_URI);
    config = await oidc.discovery(new URL(t.issuer), app.id, app.secret!, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  afterAll(async () => {
    await t?.close();
  });

  const post = (path: string, body: unknown) => api(t, 'POST', path, { token, body });

  async function signIn(token: string, email: string) {
    const { tokens } = await signInWithLink(t, config, {
      token,
      email,
      redirectUri: REDIRECT_URI,
      scope: 'openid email urn:logto:scope:organizations urn:logto:scope:organization_roles',
    });
    return tokens.claims()!;
  }

  async function organization(name: string, jitRoleName?: string) {
    const org = (await post('/api/organizations', { name })).body;
    let role: { id: string; name: string } | undefined;
    if (jitRoleName) {
      role = (await post('/api/organization-roles', { name: `${jitRoleName}-${org.id}` })).body;
      await api(t, 'PUT', `/api/organizations/${org.id}/jit/roles`, { token, body: { organizationRoleIds: [role!.id] } });
    }
    return { org, role };
  }

  it('joins the token’s organizations with their JIT default roles, once however often the user signs in', async () => {
    const a = await organization('Alpha', 'viewer');
    const b = await organization('Beta');
    const email = uniqueEmail('jit');
    const context = { jitOrganizationIds: [a.org.id, b.org.id] };

    const first = await signIn((await mintToken(t, token, { email, context })).token, email);
    expect([...(first.organizations as string[])].sort()).toEqual([a.org.id, b.org.id].sort());
    expect(first.organization_roles).toEqual([`${a.org.id}:${a.role!.name}`]);

    const second = await signIn((await mintToken(t, token, { email, context })).token, email);
    expect(second.sub).toBe(first.sub);
    const members = await api(t, 'GET', `/api/organizations/${a.org.id}/users`, { token });
    expect(members.headers.get('total-number')).toBe('1');
    expect(members.body[0].organizationRoles.map((r: { id: string }) => r.id)).toEqual([a.role!.id]);
  });

  it('still signs in when an organization was deleted after the token was minted', async () => {
    const gone = await organization('Gone', 'member');
    const email = uniqueEmail('gone');
    const minted = await mintToken(t, token, { email, context: { jitOrganizationIds: [gone.org.id] } });
    expect((await api(t, 'DELETE', `/api/organizations/${gone.org.id}`, { token })).status).toBe(204);
    const claims = await signIn(minted.token, email);
    expect(claims.email).toBe(email);
    expect(claims.organizations).toEqual([]);
  });

  it('adds new users with a verified email at a JIT email domain, but not existing users', async () => {
    const domain = `jit-${randomBytes(4).toString('hex')}.test`;
    const existingEmail = `old@${domain}`;
    const existing = await signIn((await mintToken(t, token, { email: existingEmail })).token, existingEmail);
    expect(existing.organizations).toEqual([]);

    const { org, role } = await organization('Domain Co', 'staff');
    const put = await api(t, 'PUT', `/api/organizations/${org.id}/jit/email-domains`, { token, body: { emailDomains: [domain.toUpperCase()] } });
    expect(put.body).toEqual([domain]);

    const newcomerEmail = `new@${domain}`;
    const newcomer = await signIn((await mintToken(t, token, { email: newcomerEmail })).token, newcomerEmail);
    expect(newcomer.organizations).toEqual([org.id]);
    expect(newcomer.organization_roles).toEqual([`${org.id}:${role!.name}`]);

    const again = await signIn((await mintToken(t, token, { email: existingEmail })).token, existingEmail);
    expect(again.organizations).toEqual([]);
  });
});
