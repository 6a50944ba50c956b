import { randomBytes } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrganizationRepository, type OrganizationRepository } from '../../src/organizations/index.ts';
import { CookieClient, formAction } from '../helpers/browser-client.ts';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { createTestApplication, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

const REDIRECT_URI = 'http://127.0.0.1:5999/callback';
const ORGANIZATIONS = 'urn:logto:scope:organizations';
const ORGANIZATION_ROLES = 'urn:logto:scope:organization_roles';
const ORGANIZATIONS_RESOURCE = 'urn:logto:resource:organizations';
const LOGTO_SCOPES = `openid offline_access profile email ${ORGANIZATIONS} ${ORGANIZATION_ROLES}`;

type TokenAnswer = { status: number; body: Record<string, unknown> };

describe(`organizations in tokens, as Logto SDKs expect them (${databaseKind})`, () => {
  let t: TestSesame;
  let config: oidc.Configuration;
  let app: { id: string; secret: string };
  let adminToken: string;
  let orgs: OrganizationRepository;
  let jwks: ReturnType<typeof createRemoteJWKSet>;

  beforeAll(async () => {
    t = await startTestSesame();
    const m2m = await oidc.discovery(new URL(t.issuer), t.m2m.id, t.m2m.secret, undefined, { execute: [oidc.allowInsecureRequests] });
    adminToken = (await oidc.clientCredentialsGrant(m2m, { resource: `${t.baseUrl}/api`, scope: 'all' })).access_token;
    const created = await createTestApplication(t, adminToken, REDIRECT_URI);
    app = { id: created.id, secret: created.secret! };
    config = await oidc.discovery(new URL(t.issuer), app.id, app.secret, undefined, { execute: [oidc.allowInsecureRequests] });
    jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
    // The organizations Management API is written elsewhere: set up organizations directly.
    orgs = createOrganizationRepository(t.db);
  });
  afterAll(async () => {
    await t?.close();
  });

  const unique = (label: string) => `${label}-${randomBytes(5).toString('hex')}`;

  async function createOrganization(label: string) {
    return orgs.insert({ id: unique(label), name: label, description: null, customData: {} });
  }

  async function createRole(label: string) {
    return orgs.insertRole({ id: unique('role'), name: unique(label), description: null });
  }

  /** A full sign-in with a one-time token, as a Logto SDK's app would drive it. */
  async function signIn(email: string, scope: string, extra: Record<string, string> = {}) {
    const minted = await mintToken(t, adminToken, { email });
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope,
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      one_time_token: minted.token,
      login_hint: email,
      ...extra,
    });
    const browser = new CookieClient(t.baseUrl);
    const landing = await browser.follow(url.toString());
    const html = await landing.response.text();
    const done = await browser.submitForm(html, 'one-time-token');
    expect(done.url.origin + done.url.pathname).toBe(REDIRECT_URI);
    return oidc.authorizationCodeGrant(config, done.url, { pkceCodeVerifier: verifier, expectedState: state });
  }

  /** A user who exists and belongs to organizations before signing in with the Logto scopes. */
  async function member(memberships: Array<{ organizationId: string; roleIds?: string[] }>) {
    const email = uniqueEmail('member');
    const sub = (await signIn(email, 'openid')).claims()!.sub;
    for (const { organizationId, roleIds = [] } of memberships) await orgs.provision(organizationId, sub, roleIds);
    return { email, sub };
  }

  /** The token request a Logto SDK's getOrganizationToken(organizationId) sends. */
  async function organizationToken(refreshToken: string, organizationId: string, extra: Record<string, string> = {}): Promise<TokenAnswer> {
    const response = await fetch(`${t.issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${app.id}:${app.secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, organization_id: organizationId, ...extra }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it('puts organizations and organization_roles in the ID token and userinfo when the scopes are granted', async () => {
    const [acme, globex] = [await createOrganization('Acme'), await createOrganization('Globex')];
    const [admin, viewer] = [await createRole('admin'), await createRole('viewer')];
    const { email, sub } = await member([{ organizationId: acme.id, roleIds: [admin.id, viewer.id] }, { organizationId: globex.id }]);

    const tokens = await signIn(email, LOGTO_SCOPES);
    const claims = tokens.claims()!;
    expect(claims.sub).toBe(sub);
    expect(claims.organizations).toEqual([acme.id, globex.id]);
    expect(claims.organization_roles).toEqual([`${acme.id}:${admin.name}`, `${acme.id}:${viewer.name}`].sort());

    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, sub);
    expect(userinfo.organizations).toEqual([acme.id, globex.id]);
    expect(userinfo.organization_roles).toEqual(claims.organization_roles);
  });

  it('leaves organization claims out without the scopes, and gives each scope only its own claim', async () => {
    const acme = await createOrganization('Acme');
    const role = await createRole('editor');
    const { email, sub } = await member([{ organizationId: acme.id, roleIds: [role.id] }]);

    const plain = await signIn(email, 'openid email profile offline_access');
    expect(plain.claims()).not.toHaveProperty('organizations');
    expect(plain.claims()).not.toHaveProperty('organization_roles');
    const userinfo = await oidc.fetchUserInfo(config, plain.access_token, sub);
    expect(userinfo).not.toHaveProperty('organizations');
    expect(userinfo).not.toHaveProperty('organization_roles');

    const rolesOnly = (await signIn(email, `openid ${ORGANIZATION_ROLES}`)).claims()!;
    expect(rolesOnly).not.toHaveProperty('organizations');
    expect(rolesOnly.organization_roles).toEqual([`${acme.id}:${role.name}`]);
  });

  it('signs in with resource=urn:logto:resource:organizations and keeps userinfo working', async () => {
    const acme = await createOrganization('Acme');
    const { email, sub } = await member([{ organizationId: acme.id }]);

    const tokens = await signIn(email, LOGTO_SCOPES, { resource: ORGANIZATIONS_RESOURCE });
    expect(tokens.claims()!.organizations).toEqual([acme.id]);
    // The code exchange (no resource parameter, as Logto SDKs send it) still answers a userinfo token.
    expect((await oidc.fetchUserInfo(config, tokens.access_token, sub)).organizations).toEqual([acme.id]);
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect((await oidc.fetchUserInfo(config, refreshed.access_token, sub)).sub).toBe(sub);

    const organization = await organizationToken(refreshed.refresh_token!, acme.id);
    expect(organization.status).toBe(200);
  });

  it('issues an organization token to a member: a JWT for that organization, verifiable with the JWKS', async () => {
    const acme = await createOrganization('Acme');
    const { email, sub } = await member([{ organizationId: acme.id }]);
    const tokens = await signIn(email, LOGTO_SCOPES, { resource: ORGANIZATIONS_RESOURCE });

    const answer = await organizationToken(tokens.refresh_token!, acme.id);
    expect(answer.status).toBe(200);
    expect(Object.keys(answer.body).sort()).toEqual(['access_token', 'expires_in', 'scope', 'token_type']);
    expect(answer.body).toMatchObject({ token_type: 'Bearer', scope: `${ORGANIZATIONS} ${ORGANIZATION_ROLES}` });
    expect(answer.body.expires_in).toBeGreaterThan(3500);
    expect(answer.body.expires_in).toBeLessThanOrEqual(3600);

    const { payload, protectedHeader } = await jwtVerify(answer.body.access_token as string, jwks, {
      issuer: t.issuer,
      audience: `urn:logto:organization:${acme.id}`,
      typ: 'at+jwt',
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({ sub, client_id: app.id, organization_id: acme.id, scope: `${ORGANIZATIONS} ${ORGANIZATION_ROLES}` });
    expect(payload.exp! - payload.iat!).toBe(3600);

    // The refresh token is not rotated by organization requests: it keeps working, for them and for a refresh.
    expect((await organizationToken(tokens.refresh_token!, acme.id)).status).toBe(200);
    expect((await oidc.refreshTokenGrant(config, tokens.refresh_token!)).access_token).toBeTruthy();
  });

  it('narrows the organization token to the requested scopes and refuses scopes the refresh token lacks', async () => {
    const acme = await createOrganization('Acme');
    const { email } = await member([{ organizationId: acme.id }]);
    const tokens = await signIn(email, `openid offline_access ${ORGANIZATIONS}`);

    const narrowed = await organizationToken(tokens.refresh_token!, acme.id, { scope: `openid ${ORGANIZATIONS}` });
    expect(narrowed).toMatchObject({ status: 200, body: { scope: ORGANIZATIONS } });
    const empty = await organizationToken(tokens.refresh_token!, acme.id, { scope: 'openid' });
    expect(empty).toMatchObject({ status: 200, body: { scope: '' } });

    const refused = await organizationToken(tokens.refresh_token!, acme.id, { scope: `${ORGANIZATIONS} email` });
    expect(refused).toMatchObject({ status: 400, body: { error: 'invalid_scope' } });
  });

  it('refuses an organization token to a non-member and for an unknown organization', async () => {
    const [mine, theirs] = [await createOrganization('Mine'), await createOrganization('Theirs')];
    const { email } = await member([{ organizationId: mine.id }]);
    const tokens = await signIn(email, LOGTO_SCOPES);

    for (const organizationId of [theirs.id, unique('no-such-org')]) {
      const answer = await organizationToken(tokens.refresh_token!, organizationId);
      expect(answer).toMatchObject({ status: 400, body: { error: 'invalid_grant', error_description: 'user is not a member of the organization' } });
    }
    expect((await organizationToken(tokens.refresh_token!, mine.id)).status).toBe(200);
  });

  it('refuses an organization token when the sign-in did not grant the organizations scope', async () => {
    const acme = await createOrganization('Acme');
    const { email } = await member([{ organizationId: acme.id }]);
    const tokens = await signIn(email, 'openid offline_access profile');

    const answer = await organizationToken(tokens.refresh_token!, acme.id);
    expect(answer).toMatchObject({ status: 400, body: { error: 'invalid_scope' } });
    expect(answer.body.error_description).toContain(ORGANIZATIONS);
  });

  it('still rotates on an ordinary refresh: the old refresh token then fails, for organization requests too', async () => {
    const acme = await createOrganization('Acme');
    const { email } = await member([{ organizationId: acme.id }]);
    const tokens = await signIn(email, LOGTO_SCOPES, { resource: ORGANIZATIONS_RESOURCE });

    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect((await organizationToken(refreshed.refresh_token!, acme.id)).status).toBe(200);

    const replayed = await organizationToken(tokens.refresh_token!, acme.id);
    expect(replayed).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    // Reuse detection treats the spent token as stolen and revokes the grant, as for any refresh.
    await expect(oidc.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await organizationToken(refreshed.refresh_token!, acme.id)).body.error).toBe('invalid_grant');
  });

  it('refuses the next organization token once the membership is removed, or the user suspended', async () => {
    const [acme, globex] = [await createOrganization('Acme'), await createOrganization('Globex')];
    const { email, sub } = await member([{ organizationId: acme.id }, { organizationId: globex.id }]);
    const tokens = await signIn(email, LOGTO_SCOPES);
    expect((await organizationToken(tokens.refresh_token!, acme.id)).status).toBe(200);

    await orgs.removeMember(acme.id, sub);
    expect(await organizationToken(tokens.refresh_token!, acme.id)).toMatchObject({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'user is not a member of the organization' },
    });
    expect((await organizationToken(tokens.refresh_token!, globex.id)).status).toBe(200);

    await t.db('users').where({ id: sub }).update({ is_suspended: true });
    expect(await organizationToken(tokens.refresh_token!, globex.id)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });

  it('refuses an organization token for another client’s refresh token', async () => {
    const acme = await createOrganization('Acme');
    const { email } = await member([{ organizationId: acme.id }]);
    const tokens = await signIn(email, LOGTO_SCOPES);
    const other = await createTestApplication(t, adminToken, REDIRECT_URI);

    const response = await fetch(`${t.issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${other.id}:${other.secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, organization_id: acme.id }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe('invalid_grant');
  });
});
