import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/index.ts';
import { databaseKind, openOwnDatabase } from '../helpers/db.ts';
import { api, managementToken, startTestSesame, type TestSesame } from '../helpers/server.ts';
import { within } from '../helpers/wait.ts';

/** Behind a trusted proxy, so each test speaks from the address it bans; the ban list is re-read every second. */
const ENV = { TRUST_PROXY: 'true', BAN_CACHE_SECONDS: '1' };

describe(`IP bans through the Management API (${databaseKind})`, () => {
  let isolated: { db: Database; close: () => Promise<void> };
  let t: TestSesame;
  let admin: string;

  beforeAll(async () => {
    isolated = await openOwnDatabase();
    t = await startTestSesame(ENV, { db: isolated.db });
    admin = await managementToken(t);
  });
  afterAll(async () => {
    await t?.close();
    await isolated?.close();
  });

  const ban = (body: Record<string, unknown>) => api(t, 'POST', '/api/banned-ips', { token: admin, body });
  const home = (ip: string, on = t) => fetch(`${on.listenUrl}/`, { headers: { 'x-forwarded-for': ip, accept: 'text/html' } });

  async function waitForStatus(ip: string, on: TestSesame, status: number): Promise<number> {
    const started = Date.now();
    for (;;) {
      if ((await home(ip, on)).status === status) return Date.now() - started;
      if (Date.now() - started > 5_000) throw new Error(`${ip} never got ${status} from the other instance`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it('bans an address, refuses it with 403 IP_BANNED everywhere but health, lists it, and lifts the ban', async () => {
    const ip = '192.0.2.10';
    expect((await home(ip)).status).toBe(200);
    const created = await ban({ ip, reason: 'Credential stuffing from this host', expiresIn: 3600 });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      ip,
      reason: 'Credential stuffing from this host',
      source: 'manual',
      createdBy: t.m2m.id,
      createdAt: expect.any(String),
      expiresAt: expect.any(String),
    });
    expect(Date.parse(created.body.expiresAt) - Date.parse(created.body.createdAt)).toBe(3600_000);

    const page = await home(ip);
    expect(page.status).toBe(403);
    expect(await page.text()).toContain('IP_BANNED');
    const json = await api(t, 'POST', '/api/experience/one-time-token', { body: {}, headers: { 'x-forwarded-for': ip, origin: t.baseUrl } });
    expect(json).toMatchObject({ status: 403, body: { code: 'IP_BANNED' } });
    expect((await fetch(`${t.listenUrl}/oidc/token`, { method: 'POST', headers: { 'x-forwarded-for': ip } })).status).toBe(403);
    expect((await fetch(`${t.listenUrl}/healthz`, { headers: { 'x-forwarded-for': ip } })).status).toBe(200);
    expect((await home('192.0.2.11')).status).toBe(200);

    const listed = await api(t, 'GET', '/api/banned-ips', { token: admin });
    expect(listed.status).toBe(200);
    expect(listed.body).toContainEqual(created.body);
    expect(Number(listed.headers.get('total-number'))).toBe((listed.body as unknown[]).length);
    expect((await api(t, 'GET', `/api/banned-ips/${ip}`, { token: admin })).body).toEqual(created.body);

    expect((await api(t, 'DELETE', `/api/banned-ips/${ip}`, { token: admin })).status).toBe(204);
    expect((await home(ip)).status).toBe(200);
    expect((await api(t, 'DELETE', `/api/banned-ips/${ip}`, { token: admin })).status).toBe(404);
    expect((await api(t, 'GET', `/api/banned-ips/${ip}`, { token: admin })).status).toBe(404);
  });

  it('accepts IPv4 and IPv6 addresses only, kept in one canonical form', async () => {
    for (const ip of ['not-an-ip', '1.2.3', '256.1.1.1', '01.2.3.4', '10.0.0.0/8', 'fe80::1%eth0', '2001:db8::1::2', '', 'localhost']) {
      const refused = await ban({ ip, reason: 'x' });
      expect(refused.status, ip).toBe(400);
      expect(refused.body.code).toBe('INVALID_INPUT');
    }
    for (const body of [{ ip: '192.0.2.20' }, { ip: '192.0.2.20', reason: ' ' }, { ip: '192.0.2.20', reason: 'x', expiresIn: 59 }, { ip: '192.0.2.20', reason: 'x', source: 'automatic' }]) {
      expect((await ban(body)).status, JSON.stringify(body)).toBe(400);
    }

    const v6 = await ban({ ip: '2001:DB8:0:0::0001', reason: 'IPv6 written long' });
    expect(v6.status).toBe(201);
    expect(v6.body).toMatchObject({ ip: '2001:db8::1', expiresAt: null });
    expect((await home('2001:db8:0000::1')).status).toBe(403);
    expect((await home('2001:db8::2')).status).toBe(200);
    expect((await api(t, 'DELETE', '/api/banned-ips/2001:DB8::0:1', { token: admin })).status).toBe(204);
    expect((await home('2001:db8::1')).status).toBe(200);

    const mapped = await ban({ ip: '::ffff:192.0.2.30', reason: 'IPv4-mapped' });
    expect(mapped.body.ip).toBe('192.0.2.30');
    expect((await home('192.0.2.30')).status).toBe(403);
    expect((await home('::ffff:192.0.2.30')).status).toBe(403);
    expect((await api(t, 'DELETE', '/api/banned-ips/not-an-ip', { token: admin })).status).toBe(400);
  });

  it('refuses to ban the address the request comes from, so an administrator cannot lock itself out', async () => {
    const refused = await ban({ ip: '127.0.0.1', reason: 'oops' });
    expect(refused.status).toBe(400);
    expect((await api(t, 'GET', '/api/banned-ips/127.0.0.1', { token: admin })).status).toBe(404);
    expect((await fetch(`${t.listenUrl}/`)).status).toBe(200);
  });

  it('needs a Management API token', async () => {
    expect((await api(t, 'GET', '/api/banned-ips')).status).toBe(401);
    expect((await api(t, 'POST', '/api/banned-ips', { body: { ip: '192.0.2.40', reason: 'x' } })).status).toBe(401);
    expect((await api(t, 'DELETE', '/api/banned-ips/192.0.2.40')).status).toBe(401);
  });

  it('applies a ban made on one instance on another within BAN_CACHE_SECONDS, and its lifting too', async () => {
    const other = await startTestSesame(ENV, { db: isolated.db, baseUrl: t.baseUrl });
    try {
      const ip = '192.0.2.50';
      expect((await home(ip, other)).status).toBe(200);
      expect((await ban({ ip, reason: 'spread' })).status).toBe(201);
      expect(await waitForStatus(ip, other, 403)).toBeLessThan(2_500);
      expect((await api(t, 'DELETE', `/api/banned-ips/${ip}`, { token: admin })).status).toBe(204);
      expect(await waitForStatus(ip, other, 200)).toBeLessThan(2_500);
    } finally {
      await other.close();
    }
  });

  it('applies a ban made anywhere on another instance at once while its listener is live, though it re-reads the list only every 60 s', async () => {
    const other = await startTestSesame({ ...ENV, BAN_CACHE_SECONDS: '60' }, { db: isolated.db, baseUrl: t.baseUrl });
    try {
      await within(5_000, async () => other.sesame.invalidation.isLive(), Boolean);
      const ip = '192.0.2.55';
      // The other instance reads the list now, and would not again for 60 s without the notice.
      expect((await home(ip, other)).status).toBe(200);
      expect((await ban({ ip, reason: 'spread at once' })).status).toBe(201);
      expect(await waitForStatus(ip, other, 403)).toBeLessThan(1_500);
      // Lifted by plain SQL, as an operator might: the trigger tells every instance too.
      expect(await isolated.db('banned_ips').where({ ip }).delete()).toBe(1);
      expect(await waitForStatus(ip, other, 200)).toBeLessThan(1_500);
    } finally {
      await other.close();
    }
  });

  // Last: it moves this instance's clock an hour on.
  it('ends a timed ban by itself, and the cleanup job deletes it', async () => {
    const ip = '192.0.2.60';
    expect((await ban({ ip, reason: 'one minute', expiresIn: 60 })).status).toBe(201);
    expect((await home(ip)).status).toBe(403);
    t.advanceClock(61);
    expect((await home(ip)).status).toBe(200);
    expect((await api(t, 'GET', `/api/banned-ips/${ip}`, { token: admin })).status).toBe(404);
    expect((await api(t, 'GET', '/api/banned-ips?page_size=100', { token: admin })).body).not.toContainEqual(expect.objectContaining({ ip }));
    expect(await isolated.db('banned_ips').where({ ip }).first()).toBeDefined();
    const report = await t.sesame.cleanup.runOnce();
    expect(report.deleted.expiredBans).toBeGreaterThanOrEqual(1);
    expect(await isolated.db('banned_ips').where({ ip }).first()).toBeUndefined();
  });
});
