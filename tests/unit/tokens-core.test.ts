import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  consumeFailure,
  effectiveStatus,
  generateOneTimeToken,
  hashOneTimeToken,
  normalizeEmail,
} from '../../src/tokens/core.ts';

const now = new Date('2026-12-01T12:00:00.000Z');
const secondsFromNow = (seconds: number) => new Date(now.getTime() + seconds * 1000);

describe('the effective status of a one-time token', () => {
  it('is active while the expiry is in the future', () => {
    expect(effectiveStatus({ status: 'active', expiresAt: secondsFromNow(1) }, now)).toBe('active');
  });

  it('is expired once an active token is past its expiry', () => {
    expect(effectiveStatus({ status: 'active', expiresAt: secondsFromNow(-1) }, now)).toBe('expired');
  });

  it('is expired at the exact instant of expiry', () => {
    expect(effectiveStatus({ status: 'active', expiresAt: new Date(now) }, now)).toBe('expired');
    expect(effectiveStatus({ status: 'active', expiresAt: new Date(now.getTime() + 1) }, now)).toBe('active');
  });

  it('stays consumed or revoked after the expiry', () => {
    expect(effectiveStatus({ status: 'consumed', expiresAt: secondsFromNow(-3600) }, now)).toBe('consumed');
    expect(effectiveStatus({ status: 'revoked', expiresAt: secondsFromNow(-3600) }, now)).toBe('revoked');
  });
});

describe('why a one-time token could not be consumed', () => {
  const email = 'ada@example.test';
  const record = (status: 'active' | 'consumed' | 'revoked', expiresIn: number, owner = email) => ({
    status,
    email: owner,
    expiresAt: secondsFromNow(expiresIn),
  });

  it('is "invalid" for a token nobody minted', () => {
    expect(consumeFailure(undefined, email, now)).toBe('TOKEN_INVALID');
  });

  it('is "invalid" for a token minted for another email, whatever its state', () => {
    const other = 'grace@example.test';
    expect(consumeFailure(record('active', 600, other), email, now)).toBe('TOKEN_INVALID');
    expect(consumeFailure(record('consumed', 600, other), email, now)).toBe('TOKEN_INVALID');
    expect(consumeFailure(record('active', -600, other), email, now)).toBe('TOKEN_INVALID');
    expect(consumeFailure(record('revoked', 600, other), email, now)).toBe('TOKEN_INVALID');
  });

  it('is "already used" for a consumed token, even after it expired', () => {
    expect(consumeFailure(record('consumed', 600), email, now)).toBe('TOKEN_ALREADY_USED');
    expect(consumeFailure(record('consumed', -600), email, now)).toBe('TOKEN_ALREADY_USED');
  });

  it('is "expired" for an active token past its expiry', () => {
    expect(consumeFailure(record('active', -1), email, now)).toBe('TOKEN_EXPIRED');
    expect(consumeFailure(record('active', 0), email, now)).toBe('TOKEN_EXPIRED');
  });

  it('is "invalid" for a revoked token', () => {
    expect(consumeFailure(record('revoked', 600), email, now)).toBe('TOKEN_INVALID');
  });
});

describe('generating a one-time token', () => {
  it('carries at least 128 random bits in url-safe characters', () => {
    const { token } = generateOneTimeToken();
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(Buffer.from(token, 'base64url').length * 8).toBeGreaterThanOrEqual(128);
  });

  it('stores the SHA-256 hex of the token, never the token itself', () => {
    const { token, hash } = generateOneTimeToken();
    expect(hash).toBe(createHash('sha256').update(token).digest('hex'));
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).not.toContain(token);
    expect(hashOneTimeToken(token)).toBe(hash);
  });

  it('uses the randomness it is given', () => {
    const bytes = Buffer.alloc(32, 7);
    const { token } = generateOneTimeToken((size) => bytes.subarray(0, size));
    expect(token).toBe(bytes.toString('base64url'));
  });

  it('never gives the same token twice', () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => generateOneTimeToken().token));
    expect(tokens.size).toBe(1000);
  });
});

describe('normalizing an email', () => {
  it('trims surrounding whitespace and lower-cases it', () => {
    expect(normalizeEmail('  Ada.Lovelace@Example.TEST \n')).toBe('ada.lovelace@example.test');
  });

  it('leaves an already normal email as it is', () => {
    expect(normalizeEmail('ada@example.test')).toBe('ada@example.test');
  });
});
