import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { api, createTestApplication, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';
import {
  basicAuth,
  forgeWithSesameKey,
  handmadeJwt,
  openLink,
  pressContinue,
  publicPem,
  sha256Hex,
  signingKeys,
  signInWithLink,
  tokenRequest,
  type Client,
} from './support.ts';

const REDIRECT_URI = 'http://127.0.0.1:5985/callback';

/** Attacks on the Management API: forged and borrowed tokens, mass assignment, leaking secrets and hashes. */
describe(`Management API attacks (${databaseKind})`, () => {
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

  /** The status a call to a protected route answers with this bearer token (an unknown id: 404 means it got in). */
  const statusWith = async (token: string) => (await api(t, 'GET', '/api/one-time-tokens/doesnotexist', { token })).status;
  const now = () => Math.floor(Date.now() / 1000);
  const validClaims = () => ({
    iss: t.issuer,
    aud: `${t.baseUrl}/api`,
    iat: now() - 60,
    exp: now() + 600,
    scope: 'all',
    client_id: t.m2m.id,
  });

  describe('forged and borrowed access tokens', () => {
    it('accepts its own token shape (control), so every refusal below is the attack failing', async () => {
      expect(await statusWith(admin)).toBe(404);
      expect(await statusWith(await forgeWithSesameKey(t, { scope: 'all', client_id: t.m2m.id }))).toBe(404);
    });

    it('refuses unsigned tokens with alg "none" in any spelling', async () => {
      for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
        const token = handmadeJwt({ alg, typ: 'at+jwt' }, validClaims());
        expect(await statusWith(token), alg).toBe(401);
        // Some parsers also accept a garbage or empty signature after an alg of none.
        expect(await statusWith(`${token}AAAA`), alg).toBe(401);
      }
    });

    it('refuses HS256 tokens signed with Sesame’s public key material as the HMAC key (algorithm confusion)', async () => {
      const keys = await signingKeys(t);
      for (const jwk of keys) {
        const publicJwk = { kty: jwk.kty, n: jwk.n, e: jwk.e, crv: jwk.crv, x: jwk.x, y: jwk.y, kid: jwk.kid, alg: jwk.alg, use: 'sig' };
        const secrets = [publicPem(jwk), publicPem(jwk).trim(), JSON.stringify(Object.fromEntries(Object.entries(publicJwk).filter(([, v]) => v !== undefined)))];
        if (jwk.n) secrets.push(jwk.n, Buffer.from(jwk.n, 'base64url').toString('binary'));
        for (const secret of secrets) {
          for (const alg of ['HS256', 'HS384', 'HS512']) {
            const token = handmadeJwt({ alg, kid: jwk.kid, typ: 'at+jwt' }, validClaims(), secret);
            expect(await statusWith(token), `${alg} with ${jwk.alg} key material`).toBe(401);
          }
        }
      }
    });

    it('refuses HS256 tokens signed with the M2M client secret', async () => {
      const token = handmadeJwt({ alg: 'HS256', typ: 'at+jwt' }, validClaims(), t.m2m.secret);
      expect(await statusWith(token)).toBe(401);
    });

    it('refuses a token signed by the attacker’s own key, even when it carries Sesame’s kid or embeds its jwk', async () => {
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      const sesameKid = (await signingKeys(t)).find((key) => key.alg === 'ES256')!.kid!;
      for (const header of [
        { alg: 'ES256', typ: 'at+jwt', kid: sesameKid },
        { alg: 'ES256', typ: 'at+jwt', jwk: await exportJWK(publicKey) },
        { alg: 'ES256', typ: 'at+jwt', jku: 'https://evil.example/jwks.json', kid: 'evil' },
      ]) {
        const token = await new SignJWT(validClaims()).setProtectedHeader(header).sign(privateKey);
        expect(await statusWith(token), JSON.stringify(Object.keys(header))).toBe(401);
      }
    });

    it('refuses a real signature for another audience or issuer', async () => {
      for (const audience of [t.issuer, t.m2m.id, `${t.baseUrl}/api/`, 'https://evil.example/api']) {
        expect(await statusWith(await forgeWithSesameKey(t, { scope: 'all', client_id: t.m2m.id }, { audience })), audience).toBe(401);
      }
      expect(await statusWith(await forgeWithSesameKey(t, { scope: 'all', client_id: t.m2m.id }, { issuer: 'https://evil.example/oidc' }))).toBe(401);
    });

    it('refuses an expired token and one not valid yet', async () => {
      const claims = { scope: 'all', client_id: t.m2m.id };
      expect(await statusWith(await forgeWithSesameKey(t, claims, { expiresAt: now() - 10 }))).toBe(401);
      expect(await statusWith(await forgeWithSesameKey(t, claims, { notBefore: now() + 3600 }))).toBe(401);
    });

    it('refuses an ID token or any JWT that is not typed as an access token', async () => {
      for (const typ of ['JWT', 'id_token', 'at+jwt+x']) {
        expect(await statusWith(await forgeWithSesameKey(t, { scope: 'all', client_id: t.m2m.id }, { typ })), typ).toBe(401);
      }
    });

    it('forbids a token without the `all` scope, forged or obtained from the token endpoint', async () => {
      for (const scope of ['', 'read', 'all:read', 'ALL', 'alls', ['all']]) {
        expect(await statusWith(await forgeWithSesameKey(t, { scope, client_id: t.m2m.id })), JSON.stringify(scope)).toBe(403);
      }
      expect(await statusWith(await managementToken(t, t.m2m, ''))).toBe(403);
    });

    it('forbids a client_credentials token of a machine-to-machine app without Management API access, even when it asks for `all`', async () => {
      const created = await api(t, 'POST', '/api/applications', { token: admin, body: { name: 'Plain backend', type: 'MachineToMachine' } });
      const plain = { id: created.body.id as string, secret: created.body.secret as string };
      expect(await statusWith(await managementToken(t, plain, 'all'))).toBe(403);
      // Even a perfectly signed token naming it cannot get in: access is checked per request.
      expect(await statusWith(await forgeWithSesameKey(t, { scope: 'all', client_id: plain.id }))).toBe(403);
      expect(await statusWith(await forgeWithSesameKey(t, { scope: 'all' }))).toBe(403);
    });

    it('stops an admin app’s live token at once when its access is taken away or the app is deleted', async () => {
      const created = await api(t, 'POST', '/api/applications', { token: admin, body: { name: 'Admin backend', type: 'MachineToMachine', managementApiAccess: true } });
      const backend = { id: created.body.id as string, secret: created.body.secret as string };
      const token = await managementToken(t, backend);
      expect(await statusWith(token)).toBe(404);
      await api(t, 'PATCH', `/api/applications/${backend.id}`, { token: admin, body: { managementApiAccess: false } });
      expect(await statusWith(token)).toBe(403);
      await api(t, 'PATCH', `/api/applications/${backend.id}`, { token: admin, body: { managementApiAccess: true } });
      expect(await statusWith(token)).toBe(404);
      await api(t, 'DELETE', `/api/applications/${backend.id}`, { token: admin });
      expect(await statusWith(token)).toBe(403);
    });

    it('refuses a user’s access token from the authorization code flow, opaque or issued for the API resource', async () => {
      const email = uniqueEmail();
      const resource = `${t.baseUrl}/api`;
      const codeFor = async (extra: Record<string, string>) => {
        const flow = await openLink(t, app, REDIRECT_URI, (await mintToken(t, admin, { email })).token, email, { extra });
        const done = await pressContinue(flow);
        return { code: done.url.searchParams.get('code')!, verifier: flow.verifier };
      };
      const opaque = await codeFor({});
      const plain = await tokenRequest(
        t,
        { grant_type: 'authorization_code', code: opaque.code, redirect_uri: REDIRECT_URI, code_verifier: opaque.verifier },
        basicAuth(app),
      );
      expect(plain.status).toBe(200);
      expect(await statusWith(plain.body.access_token!)).toBe(401);
      expect(await statusWith(plain.body.id_token!)).toBe(401);

      // The user's app asks for an access token for the Management API itself, with scope `all`.
      const jwt = await codeFor({ resource, scope: 'openid all' });
      const targeted = await tokenRequest(
        t,
        { grant_type: 'authorization_code', code: jwt.code, redirect_uri: REDIRECT_URI, code_verifier: jwt.verifier, resource },
        basicAuth(app),
      );
      if (targeted.status === 200) expect(await statusWith(targeted.body.access_token!)).toBe(403);
      else expect(targeted.status).toBe(400);
    });
  });

  describe('mass assignment', () => {
    it('refuses privileged fields when creating a user, and creates nothing', async () => {
      for (const [field, value] of [
        ['isSuspended', false],
        ['emailVerified', true],
        ['id', 'chosen-by-attacker'],
        ['passwordHash', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA'],
        ['hasPassword', true],
        ['createdAt', '2000-01-01T00:00:00.000Z'],
        ['lastSignInAt', '2000-01-01T00:00:00.000Z'],
      ] as const) {
        const email = uniqueEmail('mass');
        const response = await api(t, 'POST', '/api/users', { token: admin, body: { primaryEmail: email, [field]: value } });
        expect(response.status, field).toBe(400);
        expect((await api(t, 'GET', `/api/users?search=${encodeURIComponent(email)}`, { token: admin })).body, field).toEqual([]);
      }
      expect((await api(t, 'GET', '/api/users/chosen-by-attacker', { token: admin })).status).toBe(404);
    });

    it('refuses privileged fields when updating a user, and changes nothing', async () => {
      const created = await api(t, 'POST', '/api/users', { token: admin, body: { primaryEmail: uniqueEmail('target'), name: 'Target' } });
      const before = created.body;
      for (const [field, value] of [
        ['isSuspended', true],
        ['emailVerified', true],
        ['id', 'hijacked'],
        ['passwordHash', 'x'],
        ['createdAt', '2000-01-01T00:00:00.000Z'],
      ] as const) {
        const response = await api(t, 'PATCH', `/api/users/${before.id}`, { token: admin, body: { name: 'Changed', [field]: value } });
        expect(response.status, field).toBe(400);
      }
      expect((await api(t, 'GET', `/api/users/${before.id}`, { token: admin })).body).toEqual(before);
    });

    it('does not carry email verification over to a new address set by an admin', async () => {
      const email = uniqueEmail('verified');
      await signInWithLink(t, app, REDIRECT_URI, (await mintToken(t, admin, { email })).token, email);
      const [user] = (await api(t, 'GET', `/api/users?search=${encodeURIComponent(email)}`, { token: admin })).body;
      expect(user.emailVerified).toBe(true);
      const moved = await api(t, 'PATCH', `/api/users/${user.id}`, { token: admin, body: { primaryEmail: uniqueEmail('elsewhere') } });
      expect(moved.status).toBe(200);
      expect(moved.body.emailVerified).toBe(false);
    });

    it('refuses privileged fields when creating an application: no chosen secret or id, no API access for user-facing apps', async () => {
      const base = { name: 'Mass', oidcClientMetadata: { redirectUris: [REDIRECT_URI] } };
      const attempts: Array<[string, Record<string, unknown>]> = [
        ['secret', { ...base, type: 'Traditional', secret: 'attacker-chosen-secret-attacker-chosen' }],
        ['client_secret', { ...base, type: 'Traditional', client_secret: 'attacker-chosen-secret' }],
        ['id', { ...base, type: 'Traditional', id: 'attacker-chosen-id' }],
        ['managementApiAccess on Traditional', { ...base, type: 'Traditional', managementApiAccess: true }],
        ['managementApiAccess on SPA', { ...base, type: 'SPA', managementApiAccess: true }],
        ['managementApiAccess on Native', { ...base, type: 'Native', managementApiAccess: true }],
        ['grant types in the metadata', { ...base, type: 'Traditional', oidcClientMetadata: { redirectUris: [REDIRECT_URI], grantTypes: ['client_credentials'] } }],
        ['an auth method in the metadata', { ...base, type: 'SPA', oidcClientMetadata: { redirectUris: [REDIRECT_URI], tokenEndpointAuthMethod: 'none' } }],
      ];
      for (const [label, body] of attempts) {
        const response = await api(t, 'POST', '/api/applications', { token: admin, body });
        expect(response.status, label).toBe(400);
      }
      expect((await api(t, 'GET', '/api/applications/attacker-chosen-id', { token: admin })).status).toBe(404);
    });

    it('refuses privileged fields when updating an application, and its type, secret and access stay as they were', async () => {
      const created = await api(t, 'POST', '/api/applications', {
        token: admin,
        body: { name: 'Victim app', type: 'Traditional', oidcClientMetadata: { redirectUris: [REDIRECT_URI] } },
      });
      const { secret, ...before } = created.body;
      for (const [field, value] of [
        ['type', 'MachineToMachine'],
        ['secret', 'attacker-chosen-secret-attacker-chosen'],
        ['id', 'hijacked-app'],
        ['managementApiAccess', true],
        ['createdAt', '2000-01-01T00:00:00.000Z'],
      ] as const) {
        const response = await api(t, 'PATCH', `/api/applications/${before.id}`, { token: admin, body: { name: 'Renamed', [field]: value } });
        expect(response.status, field).toBe(400);
      }
      expect((await api(t, 'GET', `/api/applications/${before.id}`, { token: admin })).body).toEqual(before);
      // The original secret still authenticates; the attacker's never does.
      const grant = { grant_type: 'refresh_token', refresh_token: 'nope' };
      expect((await tokenRequest(t, grant, basicAuth({ id: before.id, secret }))).body.error).toBe('invalid_grant');
      expect((await tokenRequest(t, grant, basicAuth({ id: before.id, secret: 'attacker-chosen-secret-attacker-chosen' }))).body.error).toBe('invalid_client');
    });

    it('refuses minting a token with a chosen value, status or consumption, and reactivating a used one', async () => {
      const email = uniqueEmail('mint');
      for (const extra of [{ token: 'attacker-chosen-token' }, { status: 'consumed' }, { id: 'chosen' }, { consumedAt: null }, { tokenHash: sha256Hex('x') }]) {
        const response = await api(t, 'POST', '/api/one-time-tokens', { token: admin, body: { email, ...extra } });
        expect(response.status, JSON.stringify(extra)).toBe(400);
      }
      const used = await mintToken(t, admin, { email });
      await api(t, 'POST', '/api/one-time-tokens/verify', { token: admin, body: { token: used.token, email } });
      for (const status of ['active', 'revoked']) {
        const response = await api(t, 'PUT', `/api/one-time-tokens/${used.id}/status`, { token: admin, body: { status } });
        expect(response.status, status).toBe(400);
      }
      expect((await api(t, 'GET', `/api/one-time-tokens/${used.id}`, { token: admin })).body.status).toBe('consumed');
    });
  });

  describe('secrets and hashes never leave', () => {
    it('never returns an application secret after creation: not by get, list, update or the OpenAPI document', async () => {
      const created = await api(t, 'POST', '/api/applications', { token: admin, body: { name: 'Secretive', type: 'MachineToMachine' } });
      const secrets = [created.body.secret as string, app.secret!, t.m2m.secret];
      const responses = [
        await api(t, 'GET', `/api/applications/${created.body.id}`, { token: admin }),
        await api(t, 'GET', `/api/applications/${t.m2m.id}`, { token: admin }),
        await api(t, 'GET', '/api/applications?page_size=100', { token: admin }),
        await api(t, 'GET', '/api/applications?type=MachineToMachine&page_size=100', { token: admin }),
        await api(t, 'PATCH', `/api/applications/${created.body.id}`, { token: admin, body: { name: 'Still secretive' } }),
        await api(t, 'GET', '/api/openapi.json'),
        await api(t, 'GET', '/oidc/.well-known/openid-configuration'),
      ];
      for (const response of responses) {
        for (const secret of secrets) expect(response.text).not.toContain(secret);
        expect(response.text).not.toMatch(/secretSealed|secret_sealed|"v1\.[A-Za-z0-9_-]+\./);
      }
      expect(responses[0]!.body).not.toHaveProperty('secret');
    });

    it('never returns a one-time token or its hash after minting: not by get, list, verify, revoke, or invitations', async () => {
      const email = uniqueEmail('secret');
      const minted = await mintToken(t, admin, { email });
      const organization = await api(t, 'POST', '/api/organizations', { token: admin, body: { name: 'Leaky org' } });
      const invitation = await api(t, 'POST', '/api/organization-invitations', {
        token: admin,
        body: { email, organizationId: organization.body.id, landingUri: 'https://app.example/welcome' },
      });
      expect(invitation.status).toBe(201);
      const tokens = [minted.token, invitation.body.token as string];
      const responses = [
        await api(t, 'GET', `/api/one-time-tokens/${minted.id}`, { token: admin }),
        await api(t, 'GET', `/api/one-time-tokens?email=${encodeURIComponent(email)}`, { token: admin }),
        await api(t, 'GET', '/api/one-time-tokens?page_size=100', { token: admin }),
        await api(t, 'GET', `/api/organization-invitations/${invitation.body.id}`, { token: admin }),
        await api(t, 'GET', `/api/organization-invitations?email=${encodeURIComponent(email)}`, { token: admin }),
        await api(t, 'PUT', `/api/one-time-tokens/${minted.id}/status`, { token: admin, body: { status: 'revoked' } }),
      ];
      for (const response of responses) {
        for (const token of tokens) {
          expect(response.text).not.toContain(token);
          expect(response.text).not.toContain(sha256Hex(token));
        }
        expect(response.text).not.toMatch(/tokenHash|token_hash|"link"/);
      }
    });

    it('never returns a password hash, and never the private signing keys', async () => {
      const created = await api(t, 'POST', '/api/users', { token: admin, body: { primaryEmail: uniqueEmail('pw'), password: 'correct horse battery staple' } });
      expect(created.body.hasPassword).toBe(true);
      const responses = [
        created,
        await api(t, 'GET', `/api/users/${created.body.id}`, { token: admin }),
        await api(t, 'GET', `/api/users?search=${created.body.id}`, { token: admin }),
        await api(t, 'PATCH', `/api/users/${created.body.id}/password`, { token: admin, body: { password: 'another long password' } }),
        await api(t, 'GET', '/api/configs/oidc/keys', { token: admin }),
        await api(t, 'GET', '/oidc/jwks'),
      ];
      const privateParts = (await signingKeys(t)).map((key) => key.d!);
      for (const response of responses) {
        expect(response.text).not.toMatch(/\$argon2|passwordHash|password_hash|correct horse|another long password/);
        expect(response.text).not.toMatch(/"(d|p|q|dp|dq|qi)":/);
        for (const part of privateParts) expect(response.text).not.toContain(part);
      }
    });

    it('documents no secret-bearing field in the OpenAPI document except the secret and token returned once at creation', async () => {
      const document = (await api(t, 'GET', '/api/openapi.json')).text;
      expect(document).not.toMatch(/secretSealed|passwordHash|tokenHash|token_hash|secret_sealed|password_hash/);
    });
  });
});
