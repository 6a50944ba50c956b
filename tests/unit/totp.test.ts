import { describe, expect, it } from 'vitest';
import { base32Decode, base32Encode, matchTotp, otpauthUri, timeStep, totpCode } from '../../src/mfa/totp.ts';

/** RFC 6238 appendix B: the seeds are ASCII "1234567890" repeated to 20, 32 and 64 bytes. */
const seed = (length: number) => base32Encode(Buffer.from('1234567890'.repeat(7).slice(0, length), 'ascii'));
const vectors: Array<[number, string, string, string]> = [
  // time (s), SHA-1, SHA-256, SHA-512 (8 digits)
  [59, '94287082', '46119246', '90693936'],
  [1111111109, '07081804', '68084774', '25091201'],
  [1111111111, '14050471', '67062674', '99943326'],
  [1234567890, '89005924', '91819424', '93441116'],
  [2000000000, '69279037', '90698825', '38618901'],
  [20000000000, '65353130', '77737706', '47863826'],
];

describe('TOTP (RFC 6238)', () => {
  it.each(vectors)('at %i s gives the RFC’s codes for SHA-1, SHA-256 and SHA-512', (time, sha1, sha256, sha512) => {
    const step = timeStep(new Date(time * 1000));
    expect(totpCode(seed(20), step, { algorithm: 'sha1', digits: 8 })).toBe(sha1);
    expect(totpCode(seed(32), step, { algorithm: 'sha256', digits: 8 })).toBe(sha256);
    expect(totpCode(seed(64), step, { algorithm: 'sha512', digits: 8 })).toBe(sha512);
    // Sesame's codes: SHA-1, the last six digits.
    expect(totpCode(seed(20), step)).toBe(sha1.slice(2));
  });

  it('accepts the code of the previous, current and next step, and refuses two steps away', () => {
    const secret = seed(20);
    const now = new Date(1111111109 * 1000);
    const step = timeStep(now);
    for (const offset of [-1, 0, 1]) expect(matchTotp(secret, totpCode(secret, step + offset), now)).toBe(step + offset);
    for (const offset of [-2, 2]) expect(matchTotp(secret, totpCode(secret, step + offset), now)).toBeUndefined();
    expect(matchTotp(secret, '12345', now)).toBeUndefined();
    expect(matchTotp(secret, 'abcdef', now)).toBeUndefined();
  });

  it('round-trips base32 and builds the otpauth URI authenticator apps scan', () => {
    const bytes = Buffer.from('Sesame test secret!!', 'ascii');
    expect(base32Decode(base32Encode(bytes))).toEqual(bytes);
    expect(base32Encode(Buffer.from('foobar'))).toBe('MZXW6YTBOI');
    const uri = new URL(otpauthUri({ secret: 'JBSWY3DPEHPK3PXP', issuer: 'Acme ID', accountName: 'ada@example.com' }));
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe('/Acme ID:ada@example.com');
    expect(Object.fromEntries(uri.searchParams)).toEqual({ secret: 'JBSWY3DPEHPK3PXP', issuer: 'Acme ID', algorithm: 'SHA1', digits: '6', period: '30' });
  });
});
