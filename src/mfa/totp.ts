import { createHmac, randomBytes } from 'node:crypto';

/** RFC 6238 with what authenticator apps expect: SHA-1, 6 digits, 30-second steps. */
export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;

const base32Alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function base32Encode(bytes: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += base32Alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += base32Alphabet[(value << (5 - bits)) & 31];
  return out;
}

export function base32Decode(text: string): Buffer {
  const clean = text.toUpperCase().replace(/[\s=-]/g, '');
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const char of clean) {
    const index = base32Alphabet.indexOf(char);
    if (index === -1) throw new TypeError('not base32');
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** 20 random bytes (160 bits, as RFC 4226 recommends), base32 for the authenticator. */
export const generateTotpSecret = () => base32Encode(randomBytes(20));

export const timeStep = (now: Date) => Math.floor(now.getTime() / 1000 / TOTP_PERIOD_SECONDS);

/**
 * The code of one time step (RFC 4226 dynamic truncation). Sesame uses the
 * defaults; the algorithm and length are parameters so the RFC 6238 test
 * vectors (SHA-1/256/512, 8 digits) run through this same function.
 */
export function totpCode(secret: string, step: number, options: { algorithm?: 'sha1' | 'sha256' | 'sha512'; digits?: number } = {}): string {
  const digits = options.digits ?? TOTP_DIGITS;
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const digest = createHmac(options.algorithm ?? 'sha1', base32Decode(secret)).update(counter).digest();
  const offset = digest[digest.length - 1]! & 0x0f;
  const binary = (digest.readUInt32BE(offset) & 0x7fffffff) % 10 ** digits;
  return String(binary).padStart(digits, '0');
}

/**
 * The time step a code belongs to, within ±`window` steps of now, or
 * undefined. Every candidate is computed and compared, so the time taken does
 * not depend on which one matched.
 */
export function matchTotp(secret: string, code: string, now: Date, window = 1): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const current = timeStep(now);
  let matched: number | undefined;
  for (let offset = -window; offset <= window; offset += 1) {
    const candidate = totpCode(secret, current + offset);
    let difference = 0;
    for (let i = 0; i < TOTP_DIGITS; i += 1) difference |= candidate.charCodeAt(i) ^ code.charCodeAt(i);
    if (difference === 0 && matched === undefined) matched = current + offset;
  }
  return matched;
}

/** The otpauth:// URI authenticator apps scan. */
export function otpauthUri(input: { secret: string; issuer: string; accountName: string }): string {
  const label = `${encodeURIComponent(input.issuer)}:${encodeURIComponent(input.accountName)}`;
  const params = new URLSearchParams({
    secret: input.secret,
    issuer: input.issuer,
    algorithm: 'SHA1',
    digits: String(TOTP_DIGITS),
    period: String(TOTP_PERIOD_SECONDS),
  });
  return `otpauth://totp/${label}?${params}`;
}
