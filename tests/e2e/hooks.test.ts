import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/index.ts';
import { migrateToLatest } from '../../src/db/index.ts';
import { databaseKind, openScratchDatabase, openTestDatabase, uniqueEmail, usingPostgres } from '../helpers/db.ts';
import { api, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

type Received = { path: string; headers: IncomingHttpHeaders; body: string; at: number };

/** A webhook receiver on a loopback port; each path answers as `behaviour` says. */
async function startReceiver() {
  const received: Received[] = [];
  const behaviour = new Map<string, { status?: number; hang?: boolean }>();
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const path = request.url ?? '/';
      received.push({ path, headers: request.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      const how = behaviour.get(path) ?? {};
      if (how.hang) return; // never answers
      response.writeHead(how.status ?? 200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    behaviour,
    at: (path: string) => received.filter((request) => request.path === path),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * The receiver's check exactly as docs/management-api.md tells it, written
 * here from the documentation rather than imported: split the header, refuse
 * an old `t`, recompute HMAC-SHA256(secret, `${t}.${rawBody}`) as hex and
 * compare in constant time.
 */
function verify(header: string, rawBody: string, secret: string, toleranceSeconds = 300): boolean {
  const fields = Object.fromEntries(header.split(',').map((part) => part.split('=')));
  const t = Number(fields.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  const given = Buffer.from(String(fields.v1 ?? ''), 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A full garbage collection now (the test process runs without --expose-gc). */
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

// Fast retries for the test: 100 ms, then 200 ms; three attempts; a 1.5 s timeout.
const env = { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', CLEANUP_INTERVAL_SECONDS: '0', HOOK_RETRY_BASE_MS: '100', HOOK_MAX_ATTEMPTS: '3', HOOK_POLL_INTERVAL_MS: '50', HOOK_TIMEOUT_MS: '1500' };

describe(`webhooks (${databaseKind})`, () => {
  let db: Database;
  let dropDatabase: (() => Promise<void>) | undefined;
  let t: TestSesame;
  let token: string;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  const createHook = async (body: Record<string, unknown>, on = t) => {
    const response = await api(on, 'POST', '/api/hooks', { token, body });
    expect(response.status, response.text).toBe(201);
    return response.body as { id: string; secret: string; url: string; events: string[] };
  };
  const deliveries = async (hookId: string, on = t) => {
    const response = await api(on, 'GET', `/api/hooks/${hookId}/deliveries`, { token });
    expect(response.status, response.text).toBe(200);
    return response.body as Array<{ id: string; status: string; attempts: number; responseStatus: number | null; error: string | null; event: string; nextAttemptAt: string | null }>;
  };

  beforeAll(async () => {
    // A database of its own: on a shared one, other files' servers would take part in sending its deliveries.
    if (usingPostgres) {
      ({ db, drop: dropDatabase } = await openScratchDatabase());
      await migrateToLatest(db);
    } else {
      db = await openTestDatabase();
      dropDatabase = () => db.destroy();
    }
    t = await startTestSesame(env, { db });
    token = await managementToken(t);
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
    await dropDatabase?.();
  });

  it('creates, lists, updates, rotates and deletes hooks; the secret is shown once and sealed at rest', async () => {
    const hook = await createHook({ name: 'CRM', url: `${receiver.url}/crud`, events: ['User.Created'] });
    expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    const fetched = await api(t, 'GET', `/api/hooks/${hook.id}`, { token });
    expect(fetched.body).toMatchObject({ id: hook.id, name: 'CRM', url: `${receiver.url}/crud`, events: ['User.Created'], enabled: true });
    expect(fetched.body).not.toHaveProperty('secret');
    const row = await db('hooks').where({ id: hook.id }).first();
    expect(JSON.stringify(row)).not.toContain(hook.secret);

    const list = await api(t, 'GET', '/api/hooks?page_size=100', { token });
    expect(list.status).toBe(200);
    expect(Number(list.headers.get('total-number'))).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(list.body)).not.toContain('secret');

    const patched = await api(t, 'PATCH', `/api/hooks/${hook.id}`, { token, body: { enabled: false, events: ['SignIn.Failed', 'SignIn.Succeeded'] } });
    expect(patched.body).toMatchObject({ enabled: false, events: ['SignIn.Failed', 'SignIn.Succeeded'] });
    const rotated = await api(t, 'POST', `/api/hooks/${hook.id}/secret`, { token });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(hook.secret);

    expect((await api(t, 'DELETE', `/api/hooks/${hook.id}`, { token })).status).toBe(204);
    expect((await api(t, 'GET', `/api/hooks/${hook.id}`, { token })).status).toBe(404);
    expect((await api(t, 'GET', `/api/hooks/${hook.id}/deliveries`, { token })).status).toBe(404);
  });

  it('refuses URLs that are not http(s), unknown events, no events and unknown fields', async () => {
    for (const body of [
      { name: 'x', url: 'ftp://example.com/hook', events: ['User.Created'] },
      { name: 'x', url: 'javascript:alert(1)', events: ['User.Created'] },
      { name: 'x', url: '/relative', events: ['User.Created'] },
      { name: 'x', url: 'https://user:pass@example.com/hook', events: ['User.Created'] },
      { name: 'x', url: 'https://example.com/hook', events: ['User.Deleted'] },
      { name: 'x', url: 'https://example.com/hook', events: ['ManagementApi.Write'] },
      { name: 'x', url: 'https://example.com/hook', events: [] },
      { name: 'x', url: 'https://example.com/hook', events: ['User.Created'], secret: 'mine' },
    ]) {
      const response = await api(t, 'POST', '/api/hooks', { token, body });
      expect(response.status, JSON.stringify(body)).toBe(400);
    }
  });

  it('delivers a signed {event, createdAt, data} body that verifies with the documented algorithm, to subscribed enabled hooks only', async () => {
    const hook = await createHook({ name: 'signed', url: `${receiver.url}/signed`, events: ['User.Created', 'OneTimeToken.Created'] });
    const other = await createHook({ name: 'other', url: `${receiver.url}/other`, events: ['SignIn.Failed'] });
    const disabled = await createHook({ name: 'off', url: `${receiver.url}/off`, events: ['User.Created'], enabled: false });
    const email = uniqueEmail('hooked');
    const user = (await api(t, 'POST', '/api/users', { token, body: { primaryEmail: email } })).body;

    const request = await until('the delivery', () => receiver.at('/signed')[0]);
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers['sesame-event']).toBe('User.Created');
    const signature = String(request.headers['sesame-signature']);
    expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verify(signature, request.body, hook.secret)).toBe(true);
    expect(verify(signature, request.body, `${hook.secret}x`)).toBe(false);
    expect(verify(signature, request.body.replace(user.id, 'someone-else'), hook.secret)).toBe(false);
    const body = JSON.parse(request.body);
    expect(body).toEqual({ event: 'User.Created', createdAt: expect.any(String), data: { userId: user.id, email, source: 'management_api' } });

    const [delivery] = await until('the delivery to be recorded', async () => {
      const list = await deliveries(hook.id);
      return list[0]?.status === 'succeeded' ? list : undefined;
    });
    expect(delivery).toMatchObject({ event: 'User.Created', status: 'succeeded', attempts: 1, responseStatus: 200, error: null, nextAttemptAt: null });
    expect(request.headers['sesame-delivery']).toBe(delivery!.id);
    // Delivered bodies are not kept.
    expect((await db('hook_deliveries').where({ id: delivery!.id }).first()).body_sealed).toBeNull();

    await mintToken(t, token, { email });
    const minted = await until('the token delivery', () => receiver.at('/signed').find((r) => r.headers['sesame-event'] === 'OneTimeToken.Created'));
    expect(JSON.parse(minted.body).data).toMatchObject({ email, tokenId: expect.any(String) });
    expect(await deliveries(other.id)).toEqual([]);
    expect(await deliveries(disabled.id)).toEqual([]);
    expect(receiver.at('/off')).toEqual([]);
  });

  it('retries a failing receiver with exponential backoff, then records the failure', async () => {
    receiver.behaviour.set('/failing', { status: 503 });
    const hook = await createHook({ name: 'failing', url: `${receiver.url}/failing`, events: ['User.Created'] });
    await api(t, 'POST', '/api/users', { token, body: { primaryEmail: uniqueEmail('retry') } });

    const [delivery] = await until('the delivery to fail for good', async () => {
      const list = await deliveries(hook.id);
      return list[0]?.status === 'failed' ? list : undefined;
    });
    expect(delivery).toMatchObject({ status: 'failed', attempts: 3, responseStatus: 503, error: 'the receiver answered 503', nextAttemptAt: null });
    const attempts = receiver.at('/failing');
    expect(attempts).toHaveLength(3);
    const gaps = [attempts[1]!.at - attempts[0]!.at, attempts[2]!.at - attempts[1]!.at];
    expect(gaps[0]).toBeGreaterThanOrEqual(100);
    expect(gaps[1]).toBeGreaterThanOrEqual(200);
    // Each attempt is signed afresh; all carry the same delivery id.
    expect(new Set(attempts.map((a) => a.headers['sesame-delivery'])).size).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(receiver.at('/failing')).toHaveLength(3);
    await api(t, 'PATCH', `/api/hooks/${hook.id}`, { token, body: { enabled: false } });
  });

  it('records an unreachable receiver and one that does not answer in time', async () => {
    const closed = await startReceiver();
    await closed.close();
    const unreachable = await createHook({ name: 'gone', url: `${closed.url}/gone`, events: ['User.Created'] });
    receiver.behaviour.set('/hang', { hang: true });
    const hanging = await createHook({ name: 'hang', url: `${receiver.url}/hang`, events: ['User.Created'] });

    const started = performance.now();
    const response = await api(t, 'POST', '/api/users', { token, body: { primaryEmail: uniqueEmail('slow') } });
    const elapsed = performance.now() - started;
    expect(response.status).toBe(201);
    // The request only queued the deliveries: it did not wait for a receiver that never answers (1.5 s timeout).
    expect(elapsed).toBeLessThan(1000);

    // Three attempts with a 1.5 s timeout and backoff take about 5 s; under a loaded CI the worker's slots may be busy longer.
    // A timed-out attempt whose timeout was lost would hold its claim until the lease ends (31.5 s), twice: past the wait.
    const failedFor = async (id: string) =>
      until(
        `the deliveries of ${id}`,
        async () => {
          const list = await deliveries(id);
          return list[0]?.status === 'failed' ? list[0] : undefined;
        },
        45_000,
      );
    // Garbage collections while the attempts wait (Node 20's AbortSignal.any loses its timeout in one).
    const collecting = setInterval(collectGarbage, 50);
    try {
      expect(await failedFor(unreachable.id)).toMatchObject({ attempts: 3, responseStatus: null, error: expect.stringMatching(/ECONNREFUSED|fetch failed/) });
      expect(await failedFor(hanging.id)).toMatchObject({ attempts: 3, responseStatus: null, error: 'no answer within 1500 ms' });
    } finally {
      clearInterval(collecting);
    }
    for (const hook of [unreachable, hanging]) await api(t, 'PATCH', `/api/hooks/${hook.id}`, { token, body: { enabled: false } });
  });

  it('delivers MagicLink.Requested with its link, which the audit log leaves out', async () => {
    const hook = await createHook({ name: 'mailer', url: `${receiver.url}/mailer`, events: ['MagicLink.Requested'] });
    const email = uniqueEmail('magic');
    const link = `https://app.example/landing?token=live-token-${hook.id}&email=${encodeURIComponent(email)}`;
    await t.sesame.services.events.publish('MagicLink.Requested', { email, link, expiresAt: new Date(Date.now() + 600_000).toISOString() });
    const request = await until('the magic link delivery', () => receiver.at('/mailer')[0]);
    expect(verify(String(request.headers['sesame-signature']), request.body, hook.secret)).toBe(true);
    expect(JSON.parse(request.body).data).toMatchObject({ email, link });
    const rows = await db('audit_logs').where({ email, event: 'MagicLink.Requested' });
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain('live-token');
  });

  it('keeps queued deliveries across a restart: the next instance sends them', async () => {
    const hook = await createHook({ name: 'restart', url: `${receiver.url}/restart`, events: ['User.Created'] });
    // This instance stops sending (as if it died right after the request); the delivery stays queued in the database.
    await t.sesame.services.hooks.worker.stop();
    const user = (await api(t, 'POST', '/api/users', { token, body: { primaryEmail: uniqueEmail('restart') } })).body;
    expect((await deliveries(hook.id))[0]).toMatchObject({ status: 'pending', attempts: 0 });
    await t.close();

    t = await startTestSesame(env, { db });
    token = await managementToken(t);
    const request = await until('the delivery after the restart', () => receiver.at('/restart')[0]);
    expect(JSON.parse(request.body).data.userId).toBe(user.id);
    expect(await until('succeeded', async () => ((await deliveries(hook.id))[0]?.status === 'succeeded' ? true : undefined))).toBe(true);
  });
});
