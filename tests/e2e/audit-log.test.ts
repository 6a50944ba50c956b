import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/audit/index.ts';
import { databaseKind, statementsSent, uniqueEmail } from '../helpers/db.ts';
import { api, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

/** An audit entry as the API answers it (JSON: the time as a string). */
type LogEntry = Omit<AuditEntry, 'createdAt'> & { createdAt: string };

describe(`the audit log and stats (${databaseKind})`, () => {
  let t: TestSesame;
  let token: string;
  const logs = async (query: Record<string, string>) => {
    const response = await api(t, 'GET', `/api/logs?${new URLSearchParams(query)}`, { token });
    expect(response.status, response.text).toBe(200);
    return { entries: response.body as LogEntry[], total: Number(response.headers.get('total-number')) };
  };

  beforeAll(async () => {
    // The cleanup job stays off: on a shared PostgreSQL it would trim other files' rows by this server's clock.
    t = await startTestSesame({ CLEANUP_INTERVAL_SECONDS: '0' });
    token = await managementToken(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('records a Management API write with the client, route and status, and the caller’s IP, user agent and device', async () => {
    const email = uniqueEmail('audit');
    const headers = { 'user-agent': 'AuditTest/1.0', accept: 'application/json' };
    const created = await api(t, 'POST', '/api/users', { token, body: { primaryEmail: email }, headers });
    expect(created.status).toBe(201);

    const { entries } = await logs({ userId: created.body.id });
    expect(entries.map((entry) => entry.event)).toEqual(['User.Created']);
    expect(entries[0]).toMatchObject({ result: 'success', email, applicationId: t.m2m.id, ip: '127.0.0.1', userAgent: 'AuditTest/1.0' });
    expect(entries[0]!.deviceFingerprint).toMatch(/^[0-9a-f]{16}$/);

    const writes = (await logs({ event: 'ManagementApi.Write', applicationId: t.m2m.id, page_size: '100' })).entries.filter(
      (entry) => entry.data.path === '/api/users' && entry.createdAt >= entries[0]!.createdAt,
    );
    expect(writes[0]).toMatchObject({
      applicationId: t.m2m.id,
      result: 'success',
      data: { clientId: t.m2m.id, method: 'POST', route: '/api/users', status: 201 },
      deviceFingerprint: entries[0]!.deviceFingerprint,
    });
    // Another device (other accept headers) has another fingerprint.
    await api(t, 'POST', '/api/users', { token, body: { primaryEmail: uniqueEmail('audit') }, headers: { ...headers, accept: 'text/html' } });
    const latest = (await logs({ event: 'User.Created', applicationId: t.m2m.id, page_size: '1' })).entries[0]!;
    expect(latest.deviceFingerprint).not.toBe(entries[0]!.deviceFingerprint);
  });

  it('takes the IP from X-Forwarded-For only behind a trusted proxy (TRUST_PROXY=true)', async () => {
    const forwarded = { 'x-forwarded-for': '203.0.113.9' };
    const direct = (await api(t, 'POST', '/api/users', { token, body: { primaryEmail: uniqueEmail('direct') }, headers: forwarded })).body;
    expect((await logs({ userId: direct.id })).entries[0]!.ip).toBe('127.0.0.1');

    const proxied = await startTestSesame({ CLEANUP_INTERVAL_SECONDS: '0', TRUST_PROXY: 'true' }, { db: t.db });
    try {
      const proxiedToken = await managementToken(proxied);
      const user = (await api(proxied, 'POST', '/api/users', { token: proxiedToken, body: { primaryEmail: uniqueEmail('proxied') }, headers: forwarded })).body;
      const response = await api(proxied, 'GET', `/api/logs?userId=${user.id}`, { token: proxiedToken });
      expect(response.body[0]).toMatchObject({ event: 'User.Created', ip: '203.0.113.9', applicationId: proxied.m2m.id });

      // An address is recorded in the one spelling bans and rate limits use, and found however the filter writes it.
      const v6 = (
        await api(proxied, 'POST', '/api/users', { token: proxiedToken, body: { primaryEmail: uniqueEmail('v6') }, headers: { 'x-forwarded-for': '2001:DB8:0:0::9' } })
      ).body;
      const byUser = await api(proxied, 'GET', `/api/logs?userId=${v6.id}`, { token: proxiedToken });
      expect(byUser.body[0]).toMatchObject({ event: 'User.Created', ip: '2001:db8::9' });
      for (const spelling of ['2001:db8::9', '2001:DB8:0::0009']) {
        const found = await api(proxied, 'GET', `/api/logs?${new URLSearchParams({ ip: spelling, event: 'User.Created' })}`, { token: proxiedToken });
        expect(found.status, found.text).toBe(200);
        expect(found.body.map((entry: LogEntry) => entry.userId)).toContain(v6.id);
      }
      const mapped = await api(proxied, 'GET', `/api/logs?${new URLSearchParams({ ip: '::ffff:203.0.113.9', event: 'User.Created' })}`, { token: proxiedToken });
      expect(mapped.body.map((entry: LogEntry) => entry.userId)).toContain(user.id);
      expect((await api(proxied, 'GET', '/api/logs?ip=203.0.113', { token: proxiedToken })).status).toBe(400);
    } finally {
      await proxied.close();
    }
  });

  it('records refused writes with their status, and no reads', async () => {
    const response = await api(t, 'PATCH', '/api/users/no-such-user', { token, body: { name: 'X' } });
    expect(response.status).toBe(404);
    const refused = (await logs({ event: 'ManagementApi.Write', applicationId: t.m2m.id })).entries.find((entry) => entry.data.path === '/api/users/no-such-user');
    expect(refused).toMatchObject({ result: 'failure', data: { method: 'PATCH', route: '/api/users/:id', status: 404 } });
    await api(t, 'GET', '/api/users/no-such-user', { token });
    const all = (await logs({ event: 'ManagementApi.Write', applicationId: t.m2m.id, page_size: '100' })).entries.filter((entry) => entry.data.path === '/api/users/no-such-user');
    expect(all).toHaveLength(1);
  });

  it('records the one-time token lifecycle without ever storing the token', async () => {
    const email = uniqueEmail('lifecycle');
    const first = await mintToken(t, token, { email });
    const second = await mintToken(t, token, { email });
    expect((await api(t, 'PUT', `/api/one-time-tokens/${first.id}/status`, { token, body: { status: 'revoked' } })).status).toBe(200);
    expect((await api(t, 'POST', '/api/one-time-tokens/verify', { token, body: { token: second.token, email } })).status).toBe(200);
    expect((await api(t, 'POST', '/api/one-time-tokens/verify', { token, body: { token: second.token, email } })).status).toBe(410);

    const { entries, total } = await logs({ email });
    expect(total).toBe(5);
    expect(entries.map((entry) => [entry.event, entry.result])).toEqual([
      ['OneTimeToken.Failed', 'failure'],
      ['OneTimeToken.Consumed', 'success'],
      ['OneTimeToken.Revoked', 'success'],
      ['OneTimeToken.Created', 'success'],
      ['OneTimeToken.Created', 'success'],
    ]);
    expect(entries[0]!.data).toMatchObject({ reason: 'TOKEN_ALREADY_USED' });
    expect(entries[2]!.data).toMatchObject({ tokenId: first.id });
    for (const entry of entries) expect(entry.applicationId).toBe(t.m2m.id);
    const rows = JSON.stringify(await t.db('audit_logs').where({ email }));
    expect(rows).not.toContain(first.token);
    expect(rows).not.toContain(second.token);
  });

  it("writes a mint's two rows (OneTimeToken.Created, ManagementApi.Write) with one INSERT, both there when the answer arrives", async () => {
    await mintToken(t, token, { email: uniqueEmail('warm') }); // the mint quota's lease, taken once
    const email = uniqueEmail('one-insert');
    let minted!: { id: string };
    const sent = await statementsSent(t.db, async () => {
      minted = await mintToken(t, token, { email });
    });
    const rows = (await t.db('audit_logs').where('created_at', '>=', new Date(Date.now() - 60_000))) as Array<{ event: string; data: { tokenId?: string } }>;
    expect(rows.filter((row) => row.event === 'OneTimeToken.Created' && row.data.tokenId === minted.id)).toHaveLength(1);
    expect(sent.filter((sql) => /^\s*INSERT INTO audit_logs/i.test(sql))).toHaveLength(1);
  });

  it('records suspensions and organization membership changes', async () => {
    const user = (await api(t, 'POST', '/api/users', { token, body: { primaryEmail: uniqueEmail('member') } })).body;
    const org = (await api(t, 'POST', '/api/organizations', { token, body: { name: 'Audit Org' } })).body;
    const role = (await api(t, 'POST', '/api/organization-roles', { token, body: { name: `auditor-${user.id}` } })).body;
    expect((await api(t, 'POST', `/api/organizations/${org.id}/users`, { token, body: { userIds: [user.id] } })).status).toBe(201);
    expect((await api(t, 'PUT', `/api/organizations/${org.id}/users/${user.id}/roles`, { token, body: { organizationRoleIds: [role.id] } })).status).toBe(200);
    expect((await api(t, 'DELETE', `/api/organizations/${org.id}/users/${user.id}`, { token })).status).toBe(204);
    expect((await api(t, 'PATCH', `/api/users/${user.id}/is-suspended`, { token, body: { isSuspended: true } })).status).toBe(200);

    const { entries } = await logs({ userId: user.id });
    expect(entries.map((entry) => [entry.event, entry.data.change ?? entry.data.isSuspended ?? null])).toEqual([
      ['User.Suspended', true],
      ['Organization.Membership.Updated', 'removed'],
      ['Organization.Membership.Updated', 'roles_changed'],
      ['Organization.Membership.Updated', 'added'],
      ['User.Created', null],
    ]);
    expect(entries[2]!.data).toMatchObject({ organizationId: org.id, organizationRoleIds: [role.id] });
  });

  it('records the membership an accepted invitation gives', async () => {
    const org = (await api(t, 'POST', '/api/organizations', { token, body: { name: 'Invite Org' } })).body;
    const email = uniqueEmail('invitee');
    const invitation = await api(t, 'POST', '/api/organization-invitations', {
      token,
      body: { email, organizationId: org.id, landingUri: 'https://app.example/landing' },
    });
    expect(invitation.status).toBe(201);
    const created = (await logs({ email, event: 'OneTimeToken.Created' })).entries;
    expect(created).toHaveLength(1);
    expect(created[0]!.data).toMatchObject({ organizationIds: [org.id] });
    // Accepting is signing in with the token, which the sign-in service does: here through the core it calls.
    const user = (await api(t, 'POST', '/api/users', { token, body: { primaryEmail: email } })).body;
    const consumed = await t.sesame.services.tokens.consume({ token: invitation.body.token, email });
    await t.sesame.services.invitations.acceptAfterSignIn(consumed.id, user.id);
    const membership = (await logs({ userId: user.id, event: 'Organization.Membership.Updated' })).entries;
    expect(membership).toHaveLength(1);
    expect(membership[0]!.data).toMatchObject({ organizationId: org.id, change: 'added', source: 'invitation' });
  });

  it('filters by event, user, email, ip and time, and pages with Total-Number', async () => {
    const email = uniqueEmail('pages');
    const before = new Date().toISOString();
    for (let i = 0; i < 5; i += 1) await mintToken(t, token, { email });
    const all = await logs({ email });
    expect(all.total).toBe(5);
    const page1 = await logs({ email, page: '1', page_size: '2' });
    const page3 = await logs({ email, page: '3', page_size: '2' });
    expect(page1.total).toBe(5);
    expect(page1.entries).toHaveLength(2);
    expect(page3.entries).toHaveLength(1);
    expect([...page1.entries, ...(await logs({ email, page: '2', page_size: '2' })).entries, ...page3.entries].map((entry) => entry.id)).toEqual(
      all.entries.map((entry) => entry.id),
    );
    expect((await logs({ email, from: before })).total).toBe(5);
    expect((await logs({ email, to: before })).total).toBe(0);
    expect((await logs({ email, from: '2000-01-01', to: '2000-01-02' })).total).toBe(0);
    expect((await logs({ email, ip: '127.0.0.1' })).total).toBe(5);
    expect((await logs({ email, ip: '10.1.2.3' })).total).toBe(0);
    expect((await logs({ email, event: 'OneTimeToken.Revoked' })).total).toBe(0);
    expect((await logs({ email, applicationId: t.m2m.id })).total).toBe(5);
    expect((await logs({ email, applicationId: 'another-client' })).total).toBe(0);

    const refused: Array<Record<string, string>> = [{ event: 'Nope.Happened' }, { ip: 'not-an-ip' }, { from: 'yesterday' }, { page_size: '101' }, { unknown: 'x' }];
    for (const bad of refused) {
      const response = await api(t, 'GET', `/api/logs?${new URLSearchParams(bad)}`, { token });
      expect(response.status, JSON.stringify(bad)).toBe(400);
    }
    expect((await api(t, 'GET', '/api/logs')).status).toBe(401);
  });

  it('counts events per UTC day, days without events included', async () => {
    // Far in this server's future, so the days hold only what this test publishes, whoever shares the database.
    const offsetDays = 4000 + Math.floor(Math.random() * 20000);
    t.advanceClock(offsetDays * 86400);
    try {
      const day1 = t.sesame.services.clock().toISOString().slice(0, 10);
      const email = uniqueEmail('stats');
      await mintToken(t, token, { email });
      await mintToken(t, token, { email });
      const { events } = t.sesame.services;
      await events.publish('SignIn.Succeeded', { userId: 'u1', method: 'one_time_token', amr: ['otp'] });
      await events.publish('SignIn.Succeeded', { userId: 'u1', method: 'password', amr: ['pwd'] });
      await events.publish('SignIn.Failed', { method: 'password', code: 'INVALID_CREDENTIALS' });
      await events.publish('MagicLink.Requested', { email, link: 'https://app.example/landing?token=secret-token', expiresAt: new Date().toISOString() });
      await events.publish('RateLimit.Hit', { limit: 'magic_link_per_email', email });
      await events.publish('Mfa.Challenged', { userId: 'u1', factor: 'totp' });
      t.advanceClock(2 * 86400);
      const day3 = t.sesame.services.clock().toISOString().slice(0, 10);
      await events.publish('SignIn.Succeeded', { userId: 'u1', method: 'one_time_token', amr: ['otp'] });

      const response = await api(t, 'GET', `/api/stats?from=${day1}&to=${day3}`, { token });
      expect(response.status, response.text).toBe(200);
      const { days, totals } = response.body;
      expect(days.map((day: { day: string }) => day.day)).toHaveLength(3);
      expect(days[0]).toMatchObject({
        day: day1,
        tokensMinted: 2,
        linksSent: 1,
        rateLimitHits: 1,
        mfaChallenges: 1,
        signIns: { total: 2, byMethod: { one_time_token: 1, password: 1 } },
        signInFailures: { total: 1, byMethod: { password: 1 } },
      });
      expect(days[0].managementApiWrites).toBe(2);
      expect(days[1]).toMatchObject({ tokensMinted: 0, signIns: { total: 0, byMethod: {} } });
      expect(days[2]).toMatchObject({ day: day3, signIns: { total: 1, byMethod: { one_time_token: 1 } } });
      expect(totals).toMatchObject({ tokensMinted: 2, signIns: { total: 3, byMethod: { one_time_token: 2, password: 1 } } });

      // The link of MagicLink.Requested is for webhooks only: the audit row has the email, not the link.
      const requested = (await logs({ email, event: 'MagicLink.Requested' })).entries;
      expect(requested).toHaveLength(1);
      expect(JSON.stringify(requested)).not.toContain('secret-token');

      expect((await api(t, 'GET', `/api/stats?from=${day3}&to=${day1}`, { token })).status).toBe(400);
      expect((await api(t, 'GET', '/api/stats?from=2020-01-01&to=2022-01-01', { token })).status).toBe(400);
      expect((await api(t, 'GET', '/api/stats?from=01/02/2020', { token })).status).toBe(400);
    } finally {
      t.advanceClock(-(offsetDays + 2) * 86400);
    }
  });
});
