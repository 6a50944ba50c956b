import { exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet, type JWTPayload } from 'jose';
import type { Context } from 'koa';
import { beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import { createAccessTokenVerifier } from '../../src/http/access-token.ts';

const issuer = 'https://id.example.test/oidc';
const audience = 'https://id.example.test/api';
const request = (token: string) => ({ get: (name: string) => (name === 'Authorization' ? `Bearer ${token}` : '') }) as unknown as Context;

type Key = { jwks: JSONWebKeySet; sign: (claims: JWTPayload) => Promise<string> };
async function makeKey(kid: string): Promise<Key> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  return {
    jwks: { keys: [jwk] },
    sign: (claims) => new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' }).setIssuer(issuer).setAudience(audience).sign(privateKey),
  };
}

async function refusal(verify: (ctx: Context) => Promise<JWTPayload>, token: string): Promise<string | undefined> {
  try {
    await verify(request(token));
    return undefined;
  } catch (error) {
    return (error as AppError).code;
  }
}

describe('the access-token verifier and the tokens it remembers', () => {
  let key: Key;
  let other: Key;
  beforeAll(async () => {
    key = await makeKey('k1');
    other = await makeKey('k2');
  });

  it('answers the same claims for a token sent again, and refuses it from its expiry on', async () => {
    let clock = Date.parse('2026-11-27T12:00:00Z');
    const verify = createAccessTokenVerifier({ issuer, audience, jwks: () => key.jwks, now: () => clock });
    const exp = clock / 1000 + 60;
    const token = await key.sign({ scope: 'all', exp });
    expect((await verify(request(token))).scope).toBe('all');
    clock += 59_000;
    expect((await verify(request(token))).scope).toBe('all');
    clock += 1_000;
    expect(await refusal(verify, token)).toBe('UNAUTHORIZED');
  });

  it('checks every token again once the key set changes: a retired key’s tokens stop at once', async () => {
    let current = key.jwks;
    const clock = Date.parse('2026-11-27T12:00:00Z');
    const verify = createAccessTokenVerifier({ issuer, audience, jwks: () => current, now: () => clock });
    const token = await key.sign({ exp: clock / 1000 + 600 });
    await verify(request(token));
    current = other.jwks;
    expect(await refusal(verify, token)).toBe('UNAUTHORIZED');
    expect((await verify(request(await other.sign({ exp: clock / 1000 + 600 })))).aud).toBe(audience);
  });

  it('never remembers what failed: a forged or altered token is refused each time', async () => {
    const clock = Date.parse('2026-11-27T12:00:00Z');
    const verify = createAccessTokenVerifier({ issuer, audience, jwks: () => key.jwks, now: () => clock });
    const forged = await other.sign({ exp: clock / 1000 + 600 });
    const good = await key.sign({ exp: clock / 1000 + 600 });
    await verify(request(good));
    const [header, , signature] = good.split('.');
    const altered = `${header}.${Buffer.from(JSON.stringify({ iss: issuer, aud: audience, exp: clock / 1000 + 600, scope: 'all' })).toString('base64url')}.${signature}`;
    for (let n = 0; n < 2; n += 1) {
      expect(await refusal(verify, forged)).toBe('UNAUTHORIZED');
      expect(await refusal(verify, altered)).toBe('UNAUTHORIZED');
    }
  });

  it('keeps each verifier to its own audience: a token remembered by one is refused by another', async () => {
    const clock = Date.parse('2026-11-27T12:00:00Z');
    const api = createAccessTokenVerifier({ issuer, audience, jwks: () => key.jwks, now: () => clock });
    const account = createAccessTokenVerifier({ issuer, audience: 'https://id.example.test/api/my-account', jwks: () => key.jwks, now: () => clock });
    const token = await key.sign({ exp: clock / 1000 + 600 });
    await api(request(token));
    expect(await refusal(account, token)).toBe('UNAUTHORIZED');
  });
});
