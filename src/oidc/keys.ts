import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import type { Knex } from 'knex';
import type { Database } from '../db/index.ts';
import { deriveKey, randomToken, seal, unseal } from '../lib/crypto.ts';

export type SigningJwk = JsonWebKey & { kid: string; alg: string; use: 'sig' };

/** Everything the provider signs with, newest first: the first key of an algorithm signs, all verify. */
export type KeySet = { signing: SigningJwk[]; cookie: string[]; version: string };

export type SigningKeyInfo = { kid: string; alg: string; createdAt: Date; current: boolean };

const LOCK_ID = 0x5e5a3e01;
const ALGORITHMS = ['RS256', 'ES256'] as const;

function generate(alg: 'RS256' | 'ES256'): SigningJwk {
  const { privateKey } =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomToken(12), alg, use: 'sig' };
}

const signingSealKey = (secret: string) => deriveKey(secret, 'signing-keys');
const cookieSealKey = (secret: string) => deriveKey(secret, 'cookie-keys');

function unsealOrExplain(key: Buffer, sealed: string): string {
  try {
    return unseal(key, sealed);
  } catch {
    throw new Error(
      'The keys in the database were sealed with another SESAME_SECRET. ' +
        'Every instance on one database must use the same SESAME_SECRET (on the embedded database it lives in DATA_DIR/sesame-secret).',
    );
  }
}

async function insertSigningKeys(trx: Knex, secret: string, now: Date) {
  // RS256 (the spec default for ID tokens) and ES256 (cheaper: Management API and organization tokens).
  await trx('signing_keys').insert(
    ALGORITHMS.map((alg) => {
      const jwk = generate(alg);
      return { kid: jwk.kid, alg, private_jwk_sealed: seal(signingSealKey(secret), JSON.stringify(jwk)), created_at: now };
    }),
  );
}

async function insertCookieKey(trx: Knex, secret: string, now: Date) {
  await trx('cookie_keys').insert({ id: randomToken(9), key_sealed: seal(cookieSealKey(secret), randomToken(32)), created_at: now });
}

/**
 * Creates the first signing and cookie keys when there are none. An advisory
 * lock keeps instances starting together from each generating their own.
 */
export async function ensureKeys(db: Database, secret: string): Promise<void> {
  await db.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(?)', [LOCK_ID]);
    const now = new Date();
    if (!(await trx('signing_keys').whereNull('retired_at').first())) await insertSigningKeys(trx, secret, now);
    if (!(await trx('cookie_keys').whereNull('retired_at').first())) await insertCookieKey(trx, secret, now);
  });
}

/**
 * The fingerprint of a key set: its signing kids and cookie key ids, each
 * sorted. One function serves the poll and the load, so the two always agree.
 */
function versionOf(signingKids: string[], cookieIds: string[]): string {
  const sorted = (ids: string[]) => [...ids].sort().join(',');
  return `${sorted(signingKids)}|${sorted(cookieIds)}`;
}

/** A cheap fingerprint of the live key set: instances poll it to pick up rotations. */
export async function keySetVersion(db: Database): Promise<string> {
  const { rows } = await db.raw<{ rows: Array<{ kind: 'signing' | 'cookie'; id: string }> }>(
    `SELECT 'signing' AS kind, kid AS id FROM signing_keys WHERE retired_at IS NULL
     UNION ALL SELECT 'cookie', id FROM cookie_keys WHERE retired_at IS NULL`,
  );
  const idsOf = (kind: string) => rows.filter((row) => row.kind === kind).map((row) => row.id);
  return versionOf(idsOf('signing'), idsOf('cookie'));
}

/**
 * Loads the live keys. Its version is that of the rows it read, not a third
 * query's: a rotation or a retirement landing between the reads then shows
 * as a different version at the next poll, and is picked up, instead of
 * being recorded as already loaded.
 */
export async function loadKeySet(db: Database, secret: string): Promise<KeySet> {
  const signingRows = (await db('signing_keys').whereNull('retired_at').orderBy('created_at', 'desc').orderBy('kid')) as Array<{
    kid: string;
    private_jwk_sealed: string;
  }>;
  const cookieRows = (await db('cookie_keys').whereNull('retired_at').orderBy('created_at', 'desc').orderBy('id')) as Array<{
    id: string;
    key_sealed: string;
  }>;
  return {
    signing: signingRows.map((row) => JSON.parse(unsealOrExplain(signingSealKey(secret), row.private_jwk_sealed)) as SigningJwk),
    cookie: cookieRows.map((row) => unsealOrExplain(cookieSealKey(secret), row.key_sealed)),
    version: versionOf(
      signingRows.map((row) => row.kid),
      cookieRows.map((row) => row.id),
    ),
  };
}

/** Adds a new RS256 and ES256 key; they sign from now on, the previous keys still verify until retired. */
export async function rotateSigningKeys(db: Database, secret: string): Promise<void> {
  await db.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(?)', [LOCK_ID]);
    await insertSigningKeys(trx, secret, new Date());
  });
}

/** Adds a new cookie key that signs from now on; cookies signed with older keys stay valid until those retire. */
export async function rotateCookieKeys(db: Database, secret: string): Promise<void> {
  await db.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(?)', [LOCK_ID]);
    await insertCookieKey(trx, secret, new Date());
  });
}

export async function listSigningKeys(db: Database): Promise<SigningKeyInfo[]> {
  const rows = (await db('signing_keys').whereNull('retired_at').orderBy('created_at', 'desc').orderBy('kid')) as Array<{
    kid: string;
    alg: string;
    created_at: Date;
  }>;
  const seen = new Set<string>();
  return rows.map((row) => {
    const current = !seen.has(row.alg);
    seen.add(row.alg);
    return { kid: row.kid, alg: row.alg, createdAt: new Date(row.created_at), current };
  });
}

/**
 * Retires a previous signing key: it leaves the JWKS, so tokens it signed stop
 * verifying. The current key of an algorithm cannot be retired.
 */
export async function retireSigningKey(db: Database, kid: string): Promise<'retired' | 'current' | 'unknown'> {
  const key = (await listSigningKeys(db)).find((info) => info.kid === kid);
  if (!key) return 'unknown';
  if (key.current) return 'current';
  await db('signing_keys').where({ kid }).update({ retired_at: new Date() });
  return 'retired';
}

/** The public half of the key set, for verifying our own JWT access tokens. */
export function publicJwks(keys: SigningJwk[]): { keys: JsonWebKey[] } {
  return {
    keys: keys.map(({ d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicPart }) => publicPart),
  };
}
