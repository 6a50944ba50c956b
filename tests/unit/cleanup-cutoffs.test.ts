import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cleanupCutoffs, DEFAULT_RETENTION } from '../../src/cleanup/index.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';

const now = new Date('2026-12-01T12:00:00.000Z');
const DAY = 24 * 3600 * 1000;
const ago = (ms: number) => new Date(now.getTime() - ms);

describe('the cleanup cutoffs', () => {
  it('purge provider state five minutes after it expires, a margin for clock skew between instances', () => {
    expect(cleanupCutoffs(now, DEFAULT_RETENTION).providerModelsExpiredBefore).toEqual(ago(5 * 60 * 1000));
  });

  it('keep expired, never-used tokens listed as expired for a day', () => {
    expect(cleanupCutoffs(now, DEFAULT_RETENTION).tokensExpiredBefore).toEqual(ago(DAY));
  });

  it('keep consumed and revoked tokens for the audit period, 30 days by default', () => {
    const cutoffs = cleanupCutoffs(now, DEFAULT_RETENTION);
    expect(cutoffs.consumedBefore).toEqual(ago(30 * DAY));
    expect(cutoffs.revokedBefore).toEqual(ago(30 * DAY));
  });

  it('follow the configured audit period and graces', () => {
    const cutoffs = cleanupCutoffs(now, { auditDays: 90, expiredTokenGraceDays: 2, providerModelGraceSeconds: 0, auditLogDays: 7, hookDeliveryDays: 3 });
    expect(cutoffs).toEqual({
      providerModelsExpiredBefore: now,
      tokensExpiredBefore: ago(2 * DAY),
      consumedBefore: ago(90 * DAY),
      revokedBefore: ago(90 * DAY),
      expiredBefore: now,
      auditLogsBefore: ago(7 * DAY),
      hookDeliveriesBefore: ago(3 * DAY),
    });
  });

  it('keep audit log rows 90 days and webhook delivery rows 30 days by default', () => {
    const cutoffs = cleanupCutoffs(now, DEFAULT_RETENTION);
    expect(cutoffs.auditLogsBefore).toEqual(ago(90 * DAY));
    expect(cutoffs.hookDeliveriesBefore).toEqual(ago(30 * DAY));
  });

  it('move with the clock they are given', () => {
    const later = new Date(now.getTime() + 31 * DAY);
    expect(cleanupCutoffs(later, DEFAULT_RETENTION).consumedBefore).toEqual(new Date(now.getTime() + DAY));
  });

  it('refuse a negative or non-numeric retention rather than purge the future', () => {
    expect(() => cleanupCutoffs(now, { ...DEFAULT_RETENTION, auditDays: -1 })).toThrow(/retention.auditDays/);
    expect(() => cleanupCutoffs(now, { ...DEFAULT_RETENTION, expiredTokenGraceDays: Number.NaN })).toThrow(/expiredTokenGraceDays/);
  });
});

describe('the cleanup configuration', () => {
  const secret = randomBytes(32).toString('base64url');
  const issuesFor = (env: NodeJS.ProcessEnv) => {
    try {
      loadConfig({ SESAME_SECRET: secret, ...env });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as ConfigError).issues;
    }
    throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
  };

  it('runs every 5 minutes and keeps used tokens 30 days by default', () => {
    expect(loadConfig({ SESAME_SECRET: secret }).cleanup).toEqual({ intervalSeconds: 300, auditRetentionDays: 30 });
    expect(loadConfig({ SESAME_SECRET: secret, CLEANUP_INTERVAL_SECONDS: '', AUDIT_RETENTION_DAYS: '' }).cleanup).toEqual({
      intervalSeconds: 300,
      auditRetentionDays: 30,
    });
  });

  it('can be turned off with CLEANUP_INTERVAL_SECONDS=0 and given another audit period', () => {
    expect(loadConfig({ SESAME_SECRET: secret, CLEANUP_INTERVAL_SECONDS: '0', AUDIT_RETENTION_DAYS: '365' }).cleanup).toEqual({
      intervalSeconds: 0,
      auditRetentionDays: 365,
    });
  });

  it('names the variable when a value is wrong', () => {
    expect(issuesFor({ CLEANUP_INTERVAL_SECONDS: 'often' })).toEqual([expect.stringMatching(/^CLEANUP_INTERVAL_SECONDS: .*seconds/)]);
    expect(issuesFor({ CLEANUP_INTERVAL_SECONDS: '-5' })).toEqual([expect.stringMatching(/^CLEANUP_INTERVAL_SECONDS: /)]);
    expect(issuesFor({ AUDIT_RETENTION_DAYS: '0' })).toEqual(['AUDIT_RETENTION_DAYS: AUDIT_RETENTION_DAYS must be at least 1']);
    expect(issuesFor({ AUDIT_RETENTION_DAYS: '1.5' })).toEqual([expect.stringMatching(/^AUDIT_RETENTION_DAYS: .*whole number/)]);
  });
});
