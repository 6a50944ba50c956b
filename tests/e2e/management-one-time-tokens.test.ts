import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { api, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

describe(`one-time token lifecycle in the Management API (${databaseKind})`, () => {
  let t: TestSesame;
  let token: string;
  beforeAll(async () => {
    t = await startTestSesame();
    token = await managementToken(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  const get = (path: string) => api(t, 'GET', path, { token });

  it('lists an email’s tokens by status with pagination and a Total-Number that counts the filter', async () => {
    const email = uniqueEmail('list');
    const minted = [];
    for (let i = 0; i < 5; i += 1) minted.push(await mintToken(t, token, { email, expiresIn: i === 0 ? 60 : 600 }));
    await api(t, 'POST', '/api/one-time-tokens/verify', { token, body: { token: minted[1]!.token, email } });
    await api(t, 'PUT', `/api/one-time-tokens/${minted[2]!.id}/status`, { token, body: { status: 'revoked' } });
    t.advanceClock(61);
    try {
      const all = await get(`/api/one-time-tokens?email=${encodeURIComponent(email.toUpperCase())}`);
      expect(all.status).toBe(200);
      expect(all.headers.get('total-number')).toBe('5');
      expect(all.body.map((r: { id: string }) => r.id)).toEqual(minted.map((m) => m.id).reverse());
      expect(all.text).not.toContain(minted[0]!.token);

      const counts: Record<string, number> = {};
      for (const status of ['active', 'consumed', 'revoked', 'expired']) {
        const filtered = await get(`/api/one-time-tokens?email=${encodeURIComponent(email)}&status=${status}`);
        counts[status] = Number(filtered.headers.get('total-number'));
        expect(filtered.body.every((r: { status: string }) => r.status === status)).toBe(true);
      }
      expect(counts).toEqual({ active: 2, consumed: 1, revoked: 1, expired: 1 });

      const page1 = await get(`/api/one-time-tokens?email=${encodeURIComponent(email)}&page=1&page_size=2`);
      const page3 = await get(`/api/one-time-tokens?email=${encodeURIComponent(email)}&page=3&page_size=2`);
      const page4 = await get(`/api/one-time-tokens?email=${encodeURIComponent(email)}&page=4&page_size=2`);
      expect(page1.body).toHaveLength(2);
      expect(page3.body).toHaveLength(1);
      expect(page4.body).toEqual([]);
      expect(page4.headers.get('total-number')).toBe('5');
    } finally {
      t.advanceClock(-61);
    }
  });

  it.each([
    ['page 0', 'page=0'],
    ['a page size over 100', 'page_size=101'],
    ['a page size of 0', 'page_size=0'],
    ['a non-numeric page', 'page=two'],
    ['an unknown status', 'status=used'],
    ['an unknown filter', 'owner=me'],
    ['a repeated page', 'page=1&page=2'],
  ])('refuses %s with 400', async (_label, query) => {
    const response = await get(`/api/one-time-tokens?${query}`);
    expect(response.status).toBe(400);
    expect(response.body.code).toBe('INVALID_INPUT');
  });

  it('verifies once: the record comes back consumed, then TOKEN_ALREADY_USED; wrong email and unknown tokens are TOKEN_INVALID', async () => {
    const email = uniqueEmail('verify');
    const minted = await mintToken(t, token, { email });
    const wrong = await api(t, 'POST', '/api/one-time-tokens/verify', { token, body: { token: minted.token, email: uniqueEmail() } });
    expect(wrong.status).toBe(410);
    expect(wrong.body.code).toBe('TOKEN_INVALID');

    const ok = await api(t, 'POST', '/api/one-time-tokens/verify', { token, body: { token: minted.token, email: email.toUpperCase() } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ id: minted.id, status: 'consumed', email });
    expect(ok.body.consumedAt).toBeTruthy();
    expect(ok.body).not.toHaveProperty('token');

    const again = await api(t, 'POST', '/api/one-time-tokens/verify', { token, body: { token: minted.token, email } });
    expect(again.status).toBe(410);
    expect(again.body.code).toBe('TOKEN_ALREADY_USED');
    const unknown = await api(t, 'POST', '/api/one-time-tokens/verify', { token, body: { token: 'nope', email } });
    expect(unknown.body.code).toBe('TOKEN_INVALID');
  });

  it('lets exactly one of 25 parallel verifications consume a token', async () => {
    const email = uniqueEmail('parallel');
    const minted = await mintToken(t, token, { email });
    const results = await Promise.all(
      Array.from({ length: 25 }, () => api(t, 'POST', '/api/one-time-tokens/verify', { token, body: { token: minted.token, email } })),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 410 && r.body.code === 'TOKEN_ALREADY_USED')).toHaveLength(24);
  });

  it('verifies an expired token as TOKEN_EXPIRED', async () => {
    const email = uniqueEmail('expired');
    const minted = await mintToken(t, token, { email, expiresIn: 60 });
    t.advanceClock(60);
    try {
      const response = await api(t, 'POST', '/api/one-time-tokens/verify', { token, body: { token: minted.token, email } });
      expect(response.status).toBe(410);
      expect(response.body.code).toBe('TOKEN_EXPIRED');
    } finally {
      t.advanceClock(-60);
    }
  });

  it('revokes a token (idempotently) so it can no longer be used, and never reactivates', async () => {
    const email = uniqueEmail('revoke');
    const minted = await mintToken(t, token, { email });
    const revoked = await api(t, 'PUT', `/api/one-time-tokens/${minted.id}/status`, { token, body: { status: 'revoked' } });
    expect(revoked.status).toBe(200);
    expect(revoked.body.status).toBe('revoked');
    expect(revoked.body.revokedAt).toBeTruthy();
    expect((await api(t, 'PUT', `/api/one-time-tokens/${minted.id}/status`, { token, body: { status: 'revoked' } })).status).toBe(200);
    for (const status of ['active', 'consumed', 'expired']) {
      const refused = await api(t, 'PUT', `/api/one-time-tokens/${minted.id}/status`, { token, body: { status } });
      expect(refused.status, status).toBe(400);
    }
    const use = await api(t, 'POST', '/api/one-time-tokens/verify', { token, body: { token: minted.token, email } });
    expect(use.status).toBe(410);
    expect(use.body.code).toBe('TOKEN_INVALID');
  });

  it('refuses to revoke a used token and answers 404 for unknown ids', async () => {
    const email = uniqueEmail('used');
    const minted = await mintToken(t, token, { email });
    await api(t, 'POST', '/api/one-time-tokens/verify', { token, body: { token: minted.token, email } });
    const refused = await api(t, 'PUT', `/api/one-time-tokens/${minted.id}/status`, { token, body: { status: 'revoked' } });
    expect(refused.status).toBe(400);
    expect((await api(t, 'PUT', '/api/one-time-tokens/nope/status', { token, body: { status: 'revoked' } })).status).toBe(404);
    expect((await api(t, 'DELETE', '/api/one-time-tokens/nope', { token })).status).toBe(404);
  });

  it('deletes a token: 204, then 404', async () => {
    const minted = await mintToken(t, token, { email: uniqueEmail('delete') });
    const deleted = await api(t, 'DELETE', `/api/one-time-tokens/${minted.id}`, { token });
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    expect((await get(`/api/one-time-tokens/${minted.id}`)).status).toBe(404);
  });

  it('revokes the email’s earlier active tokens with revokePrevious, also under parallel mints', async () => {
    const email = uniqueEmail('previous');
    const first = await mintToken(t, token, { email });
    const other = await mintToken(t, token, { email: uniqueEmail('bystander') });
    const second = await mintToken(t, token, { email, revokePrevious: true });
    expect((await get(`/api/one-time-tokens/${first.id}`)).body.status).toBe('revoked');
    expect((await get(`/api/one-time-tokens/${second.id}`)).body.status).toBe('active');
    expect((await get(`/api/one-time-tokens/${other.id}`)).body.status).toBe('active');

    await Promise.all(Array.from({ length: 8 }, () => mintToken(t, token, { email, revokePrevious: true })));
    const active = await get(`/api/one-time-tokens?email=${encodeURIComponent(email)}&status=active`);
    expect(active.headers.get('total-number')).toBe('1');
  });
});
