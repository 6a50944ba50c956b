import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import type { Database } from '../db/index.ts';
import { deriveKey, randomToken, seal, unseal } from '../lib/crypto.ts';

export type SigningJwk = JsonWebKey & { kid: string; alg: string; use: 'sig' };

const LOCK_ID = 0x5e5a3e01;

function generate(alg: 'RS256' | 'ES256'): SigningJwk {
  const { privateKey } =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomToken(12), alg, use: 'sig' };
}

/**
 * The provider's signing keys (private JWKs, sealed at rest), created on first
 * start: RS256 first (the spec default for ID tokens), then ES256. An advisory
 * lock keeps two instances starting together from both generating keys.
 */
export async function ensureSigningKeys(db: Database, secret: string): Promise<SigningJwk[]> {
  const key = deriveKey(secret, 'signing-keys');
  return db.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(?)', [LOCK_ID]);
    let rows = await trx('signing_keys').whereNull('retired_at').orderBy('created_at', 'asc').orderBy('alg', 'desc');
    if (rows.length === 0) {
      const now = Date.now();
      const fresh = [generate('RS256'), generate('ES256')];
      await trx('signing_keys').insert(
        fresh.map((jwk, index) => ({
          kid: jwk.kid,
          alg: jwk.alg,
          private_jwk_sealed: seal(key, JSON.stringify(jwk)),
          created_at: new Date(now + index),
        })),
      );
      rows = await trx('signing_keys').whereNull('retired_at').orderBy('created_at', 'asc');
    }
    return rows.map((row: { private_jwk_sealed: string }) => {
      try {
        return JSON.parse(unseal(key, row.private_jwk_sealed)) as SigningJwk;
      } catch {
        throw new Error(
          'The signing keys in the database were sealed with another SESAME_SECRET. ' +
            'Every instance on one database must use the same SESAME_SECRET (on the embedded database it lives in DATA_DIR/sesame-secret).',
        );
      }
    });
  });
}

/** Cookie signing keys derived from SESAME_SECRET, shared by Koa and the provider. */
export function cookieKeys(secret: string): string[] {
  return [deriveKey(secret, 'cookie-keys-v1').toString('base64url')];
}

/** The public half of the key set, for verifying our own JWT access tokens. */
export function publicJwks(keys: SigningJwk[]): { keys: JsonWebKey[] } {
  return {
    keys: keys.map(({ d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicPart }) => publicPart),
  };
}
