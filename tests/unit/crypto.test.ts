import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { constantTimeEqual, deriveKey, randomToken, seal, sha256, unseal } from '../../src/lib/crypto.ts';

const secret = 'a-master-secret-of-at-least-32-characters';

describe('sealing secrets that must be recovered', () => {
  const key = deriveKey(secret, 'application-secrets');

  it('unseals what it sealed', () => {
    const plaintext = 'client-secret ✓ with unicode and a long tail '.repeat(5);
    expect(unseal(key, seal(key, plaintext))).toBe(plaintext);
  });

  it('does not leave the plaintext readable in the sealed value', () => {
    const sealed = seal(key, 'the-plaintext-client-secret');
    expect(sealed).not.toContain('the-plaintext-client-secret');
    expect(sealed.startsWith('v1.')).toBe(true);
  });

  it('seals the same plaintext differently every time', () => {
    expect(seal(key, 'same')).not.toBe(seal(key, 'same'));
  });

  it('refuses to unseal a value whose ciphertext was tampered with', () => {
    const sealed = seal(key, 'a secret that must not be altered');
    const [version, iv, tag, ciphertext] = sealed.split('.') as [string, string, string, string];
    const bytes = Buffer.from(ciphertext, 'base64url');
    bytes[0] = bytes[0]! ^ 0x01;
    const tampered = [version, iv, tag, bytes.toString('base64url')].join('.');
    expect(() => unseal(key, tampered)).toThrow();
  });

  it('refuses to unseal a value whose authentication tag was tampered with', () => {
    const [version, iv, tag, ciphertext] = seal(key, 'secret').split('.') as [string, string, string, string];
    const bytes = Buffer.from(tag, 'base64url');
    bytes[5] = bytes[5]! ^ 0x80;
    expect(() => unseal(key, [version, iv, bytes.toString('base64url'), ciphertext].join('.'))).toThrow();
  });

  it('refuses to unseal with a key for another purpose', () => {
    const sealed = seal(key, 'a secret');
    expect(() => unseal(deriveKey(secret, 'totp-secrets'), sealed)).toThrow();
  });

  it('refuses to unseal with a key from another master secret', () => {
    const sealed = seal(key, 'a secret');
    expect(() => unseal(deriveKey(`${secret}-rotated`, 'application-secrets'), sealed)).toThrow();
  });

  it('refuses a value that is not in the sealed format', () => {
    expect(() => unseal(key, 'plain-text')).toThrow(/unknown format/);
    expect(() => unseal(key, 'v2.a.b.c')).toThrow(/unknown format/);
  });
});

describe('random tokens', () => {
  it('are url-safe base64 carrying the requested number of random bytes', () => {
    for (const bytes of [16, 32, 48]) {
      const token = randomToken(bytes);
      expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(Buffer.from(token, 'base64url')).toHaveLength(bytes);
    }
  });

  it('carry 32 bytes (256 bits) by default', () => {
    expect(Buffer.from(randomToken(), 'base64url')).toHaveLength(32);
  });

  it('encode exactly the bytes the random source gives', () => {
    const fixed = Buffer.from('fbff00112233445566778899aabbccdd', 'hex');
    expect(randomToken(16, () => fixed)).toBe(fixed.toString('base64url'));
  });

  it('do not repeat', () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => randomToken()));
    expect(tokens.size).toBe(1000);
  });
});

describe('constant-time comparison', () => {
  it('says equal strings are equal', () => {
    const value = randomBytes(32).toString('base64url');
    expect(constantTimeEqual(value, `${value}`)).toBe(true);
    expect(constantTimeEqual('', '')).toBe(true);
  });

  it('says strings differing in one character are different', () => {
    expect(constantTimeEqual('secret-value-a', 'secret-value-b')).toBe(false);
    expect(constantTimeEqual('Secret', 'secret')).toBe(false);
  });

  it('says strings of different lengths are different, including a prefix', () => {
    expect(constantTimeEqual('secret', 'secret-and-more')).toBe(false);
    expect(constantTimeEqual('secret-and-more', 'secret')).toBe(false);
    expect(constantTimeEqual('', 'x')).toBe(false);
  });
});

describe('key derivation', () => {
  it('gives a 32-byte key that is stable for one secret and purpose', () => {
    const key = deriveKey(secret, 'application-secrets');
    expect(key).toHaveLength(32);
    expect(deriveKey(secret, 'application-secrets').equals(key)).toBe(true);
  });

  it('gives different keys for different purposes', () => {
    expect(deriveKey(secret, 'application-secrets').equals(deriveKey(secret, 'totp-secrets'))).toBe(false);
  });

  it('gives different keys for different master secrets', () => {
    expect(deriveKey(secret, 'cookies').equals(deriveKey(`${secret}!`, 'cookies'))).toBe(false);
  });
});

describe('sha256', () => {
  it('is the lower-case hex SHA-256 of the UTF-8 text', () => {
    expect(sha256('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
