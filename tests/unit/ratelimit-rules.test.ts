import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseRate } from '../../src/config.ts';
import { canonicalIp } from '../../src/http/client-ip.ts';
import { counterKey, grantedPoints, ipBucket, leaseSize, leaseState, limitRules, verdict } from '../../src/ratelimit/index.ts';

const secret = 'x'.repeat(32);

describe('rate limit settings', () => {
  it('read COUNT/WINDOW with an optional unit, or off', () => {
    expect(parseRate('10/1h')).toEqual({ points: 10, seconds: 3600 });
    expect(parseRate('30/10m')).toEqual({ points: 30, seconds: 600 });
    expect(parseRate('600/60')).toEqual({ points: 600, seconds: 60 });
    expect(parseRate(' 5 / 2d ')).toEqual({ points: 5, seconds: 172_800 });
    expect(parseRate('off')).toBeNull();
    for (const bad of ['10', '10/', '/1h', '0/1h', '10/0s', '-1/1h', '1.5/1h', '10/1w', '10/400d', 'ten/1h']) expect(parseRate(bad), bad).toBeUndefined();
  });

  it('default to the documented limits and name the variable when one is wrong', () => {
    const config = loadConfig({ SESAME_SECRET: secret });
    expect(config.rateLimits).toEqual({
      emailSendPerEmail: { points: 10, seconds: 3600 },
      emailSendPerIp: { points: 50, seconds: 3600 },
      verificationPerIp: { points: 30, seconds: 600 },
      passwordPerIpEmail: { points: 10, seconds: 900 },
      tokenMintPerClient: { points: 600, seconds: 60 },
    });
    expect(config.bans).toEqual({ autoBanAfter: { points: 5, seconds: 3600 }, autoBanSeconds: 86_400, cacheSeconds: 5 });
    expect(loadConfig({ SESAME_SECRET: secret, AUTO_BAN_AFTER: 'off', RATE_LIMIT_VERIFICATION_PER_IP: '' }).bans.autoBanAfter).toBeNull();

    const issues = (env: Record<string, string>) => {
      try {
        loadConfig({ SESAME_SECRET: secret, ...env });
        return [];
      } catch (error) {
        return (error as ConfigError).issues;
      }
    };
    expect(issues({ RATE_LIMIT_EMAIL_SEND_PER_EMAIL: 'lots' })).toEqual([expect.stringMatching(/^RATE_LIMIT_EMAIL_SEND_PER_EMAIL: .*COUNT\/WINDOW/)]);
    expect(issues({ BAN_CACHE_SECONDS: '120' })).toEqual(['BAN_CACHE_SECONDS: BAN_CACHE_SECONDS must be at most 60']);
    expect(issues({ AUTO_BAN_SECONDS: '10' })).toEqual(['AUTO_BAN_SECONDS: AUTO_BAN_SECONDS must be at least 60']);
  });

  it('leave a switched-off counter out of its limit', () => {
    const rules = limitRules({ ...loadConfig({ SESAME_SECRET: secret }).rateLimits, emailSendPerIp: null });
    expect(rules.emailSend.counters.map((counter) => counter.id)).toEqual(['emailSend:email']);
    expect(rules.tokenMint.countsTowardBans).toBe(false);
    expect(rules.verification.countsTowardBans).toBe(true);
  });

  it('lease only the mint quota; the security limits count every request', () => {
    const rules = limitRules(loadConfig({ SESAME_SECRET: secret }).rateLimits);
    const leased = Object.values(rules).flatMap((rule) => rule.counters.filter((counter) => counter.leased).map((counter) => counter.id));
    expect(leased).toEqual(['tokenMint:client']);
  });
});

describe('leases of a counter', () => {
  it('are a hundredth of the limit, at least one point (no lease) and at most ten', () => {
    expect([1, 3, 10, 150, 199, 200, 250, 600, 999, 1000, 5000, 1_000_000].map(leaseSize)).toEqual([1, 1, 1, 1, 1, 2, 2, 6, 9, 10, 10, 10]);
  });

  it('hand out only what fits under the limit after everything the store counted before them', () => {
    // 600/min in leases of 6: the store answers its count including the six just taken.
    expect(grantedPoints(600, 6, 6)).toBe(6);
    expect(grantedPoints(600, 6, 600)).toBe(6);
    expect(grantedPoints(600, 6, 602)).toBe(4);
    expect(grantedPoints(600, 6, 605)).toBe(1);
    expect(grantedPoints(600, 6, 606)).toBe(0);
    expect(grantedPoints(600, 6, 5_000)).toBe(0);
    // Points given back (reward) never make a lease larger than asked.
    expect(grantedPoints(600, 6, 2)).toBe(6);
    // A lease of one is a plain consume: allowed up to the limit, refused past it.
    expect(grantedPoints(3, 1, 3)).toBe(1);
    expect(grantedPoints(3, 1, 4)).toBe(0);
  });

  it('show as remaining what the store has not counted plus what the lease still holds, and refuse with the store’s count', () => {
    const rate = { points: 600, seconds: 60 };
    const lease = { consumed: 12, left: 5, short: false, endsAt: 1_000_030_000 };
    const allowed = leaseState(rate, lease, 1_000_000_000, false);
    expect(allowed).toEqual({ rate, consumed: 7, msBeforeNext: 30_000 });
    expect(verdict([allowed], 1_000_000_000, (state) => state.consumed > rate.points).headers['X-RateLimit-Remaining']).toBe('593');
    const refused = leaseState(rate, { consumed: 606, left: 0, short: true, endsAt: 1_000_000_500 }, 1_000_000_000, true);
    expect(verdict([refused], 1_000_000_000, (state) => state.consumed > rate.points)).toMatchObject({ headers: { 'X-RateLimit-Remaining': '0' }, retryAfter: 1 });
    // Past its window (handed out to requests that waited for it): no negative wait.
    expect(leaseState(rate, lease, 1_000_040_000, false).msBeforeNext).toBe(0);
  });
});

describe('client addresses', () => {
  it('have one canonical form', () => {
    expect(canonicalIp('192.0.2.1')).toBe('192.0.2.1');
    expect(canonicalIp('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(canonicalIp('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(canonicalIp('::ffff:c000:0201')).toBe('192.0.2.1');
    // Every way of writing an IPv4-mapped address gives the IPv4 one, the dotted forms included.
    for (const mapped of ['::FFFF:192.0.2.1', '0:0:0:0:0:ffff:192.0.2.1', '::ffff:c000:201', ' ::ffff:192.0.2.1 ']) expect(canonicalIp(mapped), mapped).toBe('192.0.2.1');
    expect(canonicalIp('::ffff:0.0.0.0')).toBe('0.0.0.0');
    expect(canonicalIp('::1')).toBe('::1');
    for (const bad of ['', 'localhost', '192.0.2', '192.0.2.256', '01.2.3.4', '192.0.2.0/24', 'fe80::1%eth0', '[::1]', '1:2:3:4:5:6:7:8:9', '::ffff:192.0.2.256', '::ffff:01.2.3.4', '::ffff:1.2.3']) expect(canonicalIp(bad), bad).toBeUndefined();
  });

  it('are counted by themselves (IPv4) or by their /64 (IPv6)', () => {
    expect(ipBucket('192.0.2.1')).toBe('192.0.2.1');
    expect(ipBucket('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(ipBucket('2001:db8:1:2::9')).toBe('2001:db8:1:2::/64');
    expect(ipBucket('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(ipBucket('::1')).toBe('0:0:0:0::/64');
    expect(ipBucket('2001:db8:1:3::9')).not.toBe(ipBucket('2001:db8:1:2::9'));
  });
});

describe('counter keys', () => {
  it('never carry the email address, and fold ASCII case only', () => {
    const key = counterKey('email', { ip: '192.0.2.1', email: 'Ada@Example.test' });
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(key).toBe(counterKey('email', { ip: '198.51.100.1', email: 'ada@example.test' }));
    // The Kelvin sign is not a k.
    expect(counterKey('email', { ip: '', email: '\u212Aate@example.test' })).not.toBe(counterKey('email', { ip: '', email: 'kate@example.test' }));
    const pair = counterKey('ipEmail', { ip: '192.0.2.1', email: 'ada@example.test' });
    expect(pair).not.toBe(counterKey('ipEmail', { ip: '192.0.2.2', email: 'ada@example.test' }));
    expect(pair).not.toBe(counterKey('ipEmail', { ip: '192.0.2.1', email: 'bob@example.test' }));
    expect(counterKey('ip', { ip: '192.0.2.1' })).toBe('192.0.2.1');
  });
});

describe('the verdict on counters', () => {
  const now = 1_000_000_000_000;
  const hour = { points: 10, seconds: 3600 };
  const perIp = { points: 50, seconds: 3600 };
  const afterConsume = (state: { consumed: number; rate: { points: number } }) => state.consumed > state.rate.points;

  it('reports the counter closest to refusing, with its reset in epoch seconds', () => {
    const result = verdict(
      [
        { rate: hour, consumed: 3, msBeforeNext: 1_000_000 },
        { rate: perIp, consumed: 48, msBeforeNext: 2_000_500 },
      ],
      now,
      afterConsume,
    );
    expect(result).toEqual({
      headers: { 'X-RateLimit-Limit': '50', 'X-RateLimit-Remaining': '2', 'X-RateLimit-Reset': String(Math.ceil((now + 2_000_500) / 1000)) },
    });
  });

  it('refuses past the limit with the longest wait among the refusing counters', () => {
    const result = verdict(
      [
        { rate: hour, consumed: 11, msBeforeNext: 600_400 },
        { rate: perIp, consumed: 51, msBeforeNext: 1_200_000 },
        { rate: perIp, consumed: 1, msBeforeNext: 3_000_000 },
      ],
      now,
      afterConsume,
    );
    expect(result.retryAfter).toBe(1200);
    expect(result.headers['X-RateLimit-Remaining']).toBe('0');
    expect(verdict([{ rate: hour, consumed: 10, msBeforeNext: 5 }], now, afterConsume).retryAfter).toBeUndefined();
    expect(verdict([{ rate: hour, consumed: 11, msBeforeNext: 5 }], now, afterConsume).retryAfter).toBe(1);
  });

  it('never shows more remaining than the limit, even after a reward', () => {
    expect(verdict([{ rate: hour, consumed: -1, msBeforeNext: 10 }], now, () => false).headers['X-RateLimit-Remaining']).toBe('10');
  });
});
