import { createHmac, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { auditEntryOf, dailyStats, daysBetween } from '../../src/audit/index.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { createEventBus, deviceFingerprint, type SesameEvent } from '../../src/events/index.ts';
import { deliveryBody, retryDelayMs, signatureHeader, verifySignature } from '../../src/hooks/index.ts';

const silent = pino({ level: 'silent' });

describe('the event bus', () => {
  it('hands every subscriber the event with its time, derived result and the context given', async () => {
    const now = new Date('2026-11-27T10:00:00Z');
    const bus = createEventBus({ logger: silent, clock: () => now });
    const seen: SesameEvent[] = [];
    bus.subscribe((event) => {
      seen.push(event);
    });
    await bus.publish('SignIn.Failed', { method: 'password', code: 'INVALID_CREDENTIALS' }, { context: { ip: '203.0.113.7' } });
    await bus.publish('ManagementApi.Write', { clientId: 'c', method: 'POST', path: '/api/users', route: '/api/users', status: 201 });
    await bus.publish('ManagementApi.Write', { clientId: 'c', method: 'POST', path: '/api/users', route: '/api/users', status: 409 });
    expect(seen.map((event) => [event.name, event.result])).toEqual([
      ['SignIn.Failed', 'failure'],
      ['ManagementApi.Write', 'success'],
      ['ManagementApi.Write', 'failure'],
    ]);
    expect(seen[0]).toMatchObject({ createdAt: now, context: { ip: '203.0.113.7' }, data: { code: 'INVALID_CREDENTIALS' } });
  });

  it('never throws into the publisher, and other subscribers still get the event', async () => {
    const bus = createEventBus({ logger: silent });
    const seen: string[] = [];
    bus.subscribe(() => {
      throw new Error('sync failure');
    });
    bus.subscribe(async () => {
      throw new Error('async failure');
    });
    bus.subscribe((event) => {
      seen.push(event.name);
    });
    await expect(bus.publish('User.Created', { userId: 'u', email: null, source: 'cli' })).resolves.toBeUndefined();
    expect(seen).toEqual(['User.Created']);
  });

  it('lets the publisher go on when a subscriber is slow; flush() still waits for it', async () => {
    const bus = createEventBus({ logger: silent, acceptWaitMs: 50 });
    let finished = false;
    bus.subscribe(async () => {
      await new Promise((resolve) => setTimeout(resolve, 400));
      finished = true;
    });
    const started = performance.now();
    await bus.publish('EmailCode.Sent', { email: 'a@example.test' });
    expect(performance.now() - started).toBeLessThan(300);
    expect(finished).toBe(false);
    await bus.flush();
    expect(finished).toBe(true);
  });

  it('resolves a publish once every subscriber has accepted, and flush() once every event has been', async () => {
    const bus = createEventBus({ logger: silent, acceptWaitMs: 5_000 });
    // No subscriber, and nothing in flight: both resolve at once.
    await bus.publish('User.Created', { userId: 'u', email: null, source: 'cli' });
    await bus.flush();

    const accepted: string[] = [];
    bus.subscribe(async (event) => {
      await new Promise((resolve) => setTimeout(resolve, event.name === 'User.Created' ? 30 : 120));
      accepted.push(`slow ${event.name}`);
    });
    bus.subscribe((event) => {
      accepted.push(`quick ${event.name}`);
    });
    await bus.publish('User.Created', { userId: 'u', email: null, source: 'cli' });
    expect(accepted).toEqual(['quick User.Created', 'slow User.Created']);

    void bus.publish('EmailCode.Sent', { email: 'a@example.test' });
    void bus.publish('User.Created', { userId: 'v', email: null, source: 'cli' });
    await bus.flush();
    expect(accepted.slice(2).sort()).toEqual(['quick EmailCode.Sent', 'quick User.Created', 'slow EmailCode.Sent', 'slow User.Created']);
  });
});

describe('publishLater', () => {
  it('lets the publisher go on at once inside a request, and the answer waits until the event is accepted; outside a request it waits itself', async () => {
    const bus = createEventBus({ logger: silent });
    const accepted: string[] = [];
    bus.subscribe(async (event) => {
      await new Promise((resolve) => setTimeout(resolve, 100));
      accepted.push(event.name);
    });
    const app = new Koa();
    app.use(bus.middleware());
    let acceptedWhenPublisherWentOn: number | undefined;
    app.use(async (ctx) => {
      await bus.publishLater('User.Created', { userId: 'u1', email: null, source: 'cli' });
      acceptedWhenPublisherWentOn = accepted.length;
      ctx.body = 'ok';
    });
    const server = createServer(app.callback()).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      expect(await response.text()).toBe('ok');
      expect(acceptedWhenPublisherWentOn).toBe(0);
      expect(accepted).toEqual(['User.Created']);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    await bus.publishLater('User.Created', { userId: 'u2', email: null, source: 'cli' });
    expect(accepted).toEqual(['User.Created', 'User.Created']);
  });
});

describe('audit rows', () => {
  it('keep the common fields in columns and never a link, token, code or password', () => {
    const event = {
      name: 'MagicLink.Requested',
      data: { email: 'a@example.test', link: 'https://app/landing?token=tok-secret-1', expiresAt: '2026-11-27T10:10:00Z', token: 'tok-secret-1', code: '123456', password: 'pw' },
      createdAt: new Date(),
      context: { ip: '203.0.113.7', userAgent: 'UA', deviceFingerprint: 'fedcba9876543210', clientId: 'm2m' },
      result: 'success',
    } as unknown as SesameEvent;
    const entry = auditEntryOf(event);
    expect(entry).toMatchObject({ event: 'MagicLink.Requested', email: 'a@example.test', applicationId: 'm2m', ip: '203.0.113.7', userAgent: 'UA' });
    expect(entry.data).toEqual({ expiresAt: '2026-11-27T10:10:00Z' });
    expect(JSON.stringify(entry)).not.toMatch(/tok-secret-1|123456|"pw"/);
  });

  it('fingerprint a device by its user agent and accept headers, in 16 hex characters', () => {
    const base = { userAgent: 'Mozilla/5.0', accept: 'text/html', acceptLanguage: 'en', acceptEncoding: 'gzip' };
    expect(deviceFingerprint(base)).toMatch(/^[0-9a-f]{16}$/);
    expect(deviceFingerprint(base)).toBe(deviceFingerprint({ ...base }));
    expect(deviceFingerprint({ ...base, acceptLanguage: 'fr' })).not.toBe(deviceFingerprint(base));
  });
});

describe('daily stats', () => {
  it('list every day of the range, both ends included, with zeros where nothing happened', () => {
    expect(daysBetween('2026-02-27', '2026-03-02')).toEqual(['2026-02-27', '2026-02-28', '2026-03-01', '2026-03-02']);
    expect(daysBetween('2026-03-02', '2026-03-01')).toEqual([]);
    const { days, totals } = dailyStats(
      [
        { day: '2026-03-01', event: 'SignIn.Succeeded', method: 'password', count: 2 },
        { day: '2026-03-01', event: 'SignIn.Succeeded', method: null, count: 1 },
        { day: '2026-03-02', event: 'SignIn.Failed', method: 'email_code', count: 4 },
        { day: '2026-03-02', event: 'RateLimit.Hit', method: null, count: 3 },
        { day: '2026-03-02', event: 'Mfa.Challenged', method: null, count: 5 },
        { day: '2026-03-02', event: 'MagicLink.Requested', method: null, count: 6 },
        { day: '2026-03-09', event: 'MagicLink.Requested', method: null, count: 99 },
      ],
      '2026-03-01',
      '2026-03-03',
    );
    expect(days.map((day) => day.day)).toEqual(['2026-03-01', '2026-03-02', '2026-03-03']);
    expect(days[0]!.signIns).toEqual({ total: 3, byMethod: { password: 2, unknown: 1 } });
    expect(days[1]).toMatchObject({ signInFailures: { total: 4, byMethod: { email_code: 4 } }, rateLimitHits: 3, mfaChallenges: 5, linksSent: 6 });
    expect(days[2]).toMatchObject({ linksSent: 0, signIns: { total: 0, byMethod: {} } });
    expect(totals).toMatchObject({ linksSent: 6, rateLimitHits: 3, signIns: { total: 3 } });
  });
});

describe('webhook signatures and retries', () => {
  const secret = `whsec_${randomBytes(32).toString('base64url')}`;
  const body = deliveryBody('User.Created', new Date('2026-11-27T10:00:00Z'), { userId: 'u1' });

  it('sign "t.body" with HMAC-SHA256 in hex, as documented', () => {
    expect(JSON.parse(body)).toEqual({ event: 'User.Created', createdAt: '2026-11-27T10:00:00.000Z', data: { userId: 'u1' } });
    const header = signatureHeader(secret, body, 1_795_000_000);
    expect(header).toBe(`t=1795000000,v1=${createHmac('sha256', secret).update(`1795000000.${body}`).digest('hex')}`);
  });

  it('verify only the right secret, body and a fresh timestamp', () => {
    const header = signatureHeader(secret, body, 1_795_000_000);
    expect(verifySignature({ header, body, secret, nowSeconds: 1_795_000_100 })).toBe(true);
    expect(verifySignature({ header, body, secret: `${secret}x`, nowSeconds: 1_795_000_100 })).toBe(false);
    expect(verifySignature({ header, body: body.replace('u1', 'u2'), secret, nowSeconds: 1_795_000_100 })).toBe(false);
    expect(verifySignature({ header, body, secret, nowSeconds: 1_795_000_301 })).toBe(false);
    expect(verifySignature({ header: header.replace('t=1795000000', 't=1795000001'), body, secret, nowSeconds: 1_795_000_000 })).toBe(false);
    expect(verifySignature({ header: 'garbage', body, secret, nowSeconds: 1_795_000_000 })).toBe(false);
  });

  it('back off exponentially from the base, capped', () => {
    expect([1, 2, 3, 4].map((attempt) => retryDelayMs(attempt, 30_000))).toEqual([30_000, 60_000, 120_000, 240_000]);
    expect(retryDelayMs(20, 30_000)).toBe(3_600_000);
  });
});

describe('audit and webhook configuration', () => {
  const secret = randomBytes(32).toString('base64url');

  it('defaults: audit rows 90 days, deliveries 30 days, 10 s timeout, 8 attempts from 30 s, polled every 5 s', () => {
    const config = loadConfig({ SESAME_SECRET: secret });
    expect(config.audit).toEqual({ logRetentionDays: 90 });
    expect(config.hooks).toEqual({ timeoutMs: 10_000, maxAttempts: 8, retryBaseMs: 30_000, pollIntervalMs: 5_000, deliveryRetentionDays: 30 });
  });

  it('takes other values and names the variable when one is wrong', () => {
    const config = loadConfig({ SESAME_SECRET: secret, AUDIT_LOG_RETENTION_DAYS: '365', HOOK_MAX_ATTEMPTS: '3', HOOK_RETRY_BASE_MS: '100' });
    expect(config.audit.logRetentionDays).toBe(365);
    expect(config.hooks).toMatchObject({ maxAttempts: 3, retryBaseMs: 100 });
    for (const [name, value] of [
      ['AUDIT_LOG_RETENTION_DAYS', '0'],
      ['HOOK_DELIVERY_RETENTION_DAYS', '1.5'],
      ['HOOK_TIMEOUT_MS', 'slow'],
      ['HOOK_MAX_ATTEMPTS', '21'],
      ['HOOK_RETRY_BASE_MS', '1'],
      ['HOOK_POLL_INTERVAL_MS', '-1'],
    ] as const) {
      const error = (() => {
        try {
          loadConfig({ SESAME_SECRET: secret, [name]: value });
        } catch (caught) {
          return caught;
        }
        return undefined;
      })();
      expect(error, name).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues, name).toEqual([expect.stringMatching(new RegExp(`^${name}: ${name} must`))]);
    }
  });
});
