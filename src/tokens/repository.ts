import type { Database } from '../db/index.ts';
import { recordset, run, statement } from '../db/statements.ts';
import type { Knex } from 'knex';
import type { StoredStatus, TokenContext, TokenRecord, TokenStatus } from './core.ts';
import { createGroupCommit } from '../lib/group-commit.ts';

type Row = {
  id: string;
  email: string;
  token_hash: string;
  status: StoredStatus;
  context: TokenContext;
  expires_at: Date;
  created_at: Date;
  consumed_at: Date | null;
  consumed_interaction_uid: string | null;
  revoked_at: Date | null;
};

const toRecord = (row: Row): TokenRecord => ({
  id: row.id,
  email: row.email,
  status: row.status,
  context: row.context ?? {},
  expiresAt: new Date(row.expires_at),
  createdAt: new Date(row.created_at),
  consumedAt: row.consumed_at ? new Date(row.consumed_at) : null,
  consumedInteractionUid: row.consumed_interaction_uid,
  revokedAt: row.revoked_at ? new Date(row.revoked_at) : null,
});

const COLUMNS = 'id, email, token_hash, status, context, expires_at, created_at, consumed_at, consumed_interaction_uid, revoked_at';

/** What a consumption looks for: the token's hash, for this (normalized) email, unexpired at `now`, for this interaction. */
export type TokenConsumption = { hash: string; email: string; now: Date; interactionUid?: string };

/**
 * Single use, decided by one conditional UPDATE: of any number of parallel
 * attempts exactly one flips `active → consumed`. The interaction that
 * consumed a token may present it again (a double click, a later MFA step)
 * without another interaction being able to. Its values: `consumptionValues`.
 * The sign-in's statement (src/users) runs it as a CTE, ahead of the account
 * upsert it feeds.
 */
/*
 * `(email || '')`, not `email`: the token is found by its hash (a unique
 * index) and its address only checked. With a bare `email = ?` the prepared
 * statement's generic plan, which PostgreSQL settles on after five
 * executions, found the token through the (email, status, created_at)
 * index, both looking like one row, and walked every token the address had
 * ever been sent.
 */
const consumeSql = (values: { at: string; uid: string; hash: string; email: string }, extra: { from?: string; returning?: string } = {}) =>
  `UPDATE one_time_tokens
     SET status = 'consumed', consumed_at = coalesce(consumed_at, ${values.at}), consumed_interaction_uid = ${values.uid}
     ${extra.from ?? ''}
     WHERE token_hash = ${values.hash} AND (email || '') = ${values.email} AND expires_at > ${values.at}
       AND (status = 'active' OR (status = 'consumed' AND consumed_interaction_uid = ${values.uid}))
     RETURNING ${COLUMNS}${extra.returning ? `, ${extra.returning}` : ''}`;

export const CONSUME_SQL = consumeSql({ at: '?', uid: '?', hash: '?', email: '?' });

/**
 * The same consumption for several tokens at once: each row of `source`
 * (`r_hash`, `r_email`, `r_at`, `r_uid` and whatever else it carries,
 * returned as `returning`) consumes the token it names by the same rule.
 * A token row is updated once per statement, so two rows naming one token
 * must not share a statement (the caller keeps each address to one row).
 */
export const consumeManySql = (source: string, returning: string) =>
  consumeSql({ at: 'r.r_at', uid: 'r.r_uid', hash: 'r.r_hash', email: 'r.r_email' }, { from: `FROM ${source} AS r`, returning });

export function consumptionValues(input: TokenConsumption): unknown[] {
  // Without an interaction, `consumed_interaction_uid = NULL` matches nothing: only an active token is taken.
  const uid = input.interactionUid ?? null;
  return [input.now, uid, input.hash, input.email, input.now, uid];
}

const COLUMN_NAMES = COLUMNS.split(', ');

/** The token columns of `source` in a row that also holds others, each named `token_<column>` (read back by `tokenFromPrefixed`). */
export const prefixedColumnsOf = (source: string) => COLUMN_NAMES.map((column) => `${source}.${column} AS token_${column}`).join(', ');

/** The record in a row read with `prefixedColumnsOf`. */
export function tokenFromPrefixed(row: Record<string, unknown>): TokenRecord {
  return toRecord(Object.fromEntries(COLUMN_NAMES.map((column) => [column, row[`token_${column}`]])) as Row);
}

/** Minted rows, one JSON parameter (src/db/statements.ts `recordset`), in `valuesOf` order. */
const MINTED = recordset([
  ['id', 'text'],
  ['email', 'text'],
  ['token_hash', 'text'],
  ['context', 'jsonb'],
  ['expires_at', 'timestamptz'],
  ['created_at', 'timestamptz'],
]);

/** The statements of every mint and every sign-in with a token, prepared on PostgreSQL. */
const SQL = {
  insert: statement(
    'one_time_tokens_insert',
    `INSERT INTO one_time_tokens (id, email, token_hash, status, context, expires_at, created_at)
     VALUES (?, ?, ?, 'active', ?::jsonb, ?, ?) RETURNING ${COLUMNS}`,
  ),
  /** Several mints in one statement, whatever their number (one JSON parameter, `MINTED`). */
  insertMany: statement(
    'one_time_tokens_insert_many',
    `INSERT INTO one_time_tokens (id, email, token_hash, status, context, expires_at, created_at)
     SELECT id, email, token_hash, 'active', context, expires_at, created_at
     FROM ${MINTED.from('t')}
     RETURNING ${COLUMNS}`,
  ),
  consume: statement('one_time_tokens_consume', CONSUME_SQL),
};

export type TokenRepository = ReturnType<typeof createTokenRepository>;

export type TokenFilter = { email?: string; status?: TokenStatus };

type NewToken = { id: string; email: string; hash: string; context: TokenContext; expiresAt: Date; createdAt: Date };

/** Mints per INSERT at most (group commit). */
const MAX_MINT_BATCH = 100;

export function createTokenRepository(db: Database) {
  const table = (trx: Knex = db) => trx<Row>('one_time_tokens');
  const valuesOf = (token: NewToken) => [token.id, token.email, token.hash, JSON.stringify(token.context), token.expiresAt, token.createdAt];
  const insertOne = async (token: NewToken, trx: Knex = db) => toRecord((await run<Row>(trx, SQL.insert, valuesOf(token)))[0]!);
  /**
   * Mints that arrive while another mint's INSERT is in flight share the
   * next one (src/lib/group-commit.ts): under load a mint costs a fraction
   * of a statement. Each resolves once its own row is committed.
   */
  const insertGrouped = createGroupCommit(async (tokens: NewToken[]): Promise<TokenRecord[]> => {
    if (tokens.length === 1) return [await insertOne(tokens[0]!)];
    const byId = new Map((await run<Row>(db, SQL.insertMany, [MINTED.value(tokens.map(valuesOf))])).map((row) => [row.id, toRecord(row)] as const));
    return tokens.map((token) => byId.get(token.id)!);
  }, { maxBatch: MAX_MINT_BATCH });

  /** Expiry is computed at read time: `active` and `expired` split on expires_at. */
  function applyFilter(query: Knex.QueryBuilder, filter: TokenFilter, now: Date) {
    if (filter.email) query.where('email', filter.email);
    switch (filter.status) {
      case 'active':
        query.where('status', 'active').andWhere('expires_at', '>', now);
        break;
      case 'expired':
        query.where('status', 'active').andWhere('expires_at', '<=', now);
        break;
      case 'consumed':
      case 'revoked':
        query.where('status', filter.status);
        break;
      default:
    }
    return query;
  }

  return {
    /**
     * Inserts a token. With `revokePrevious`, the email's earlier active tokens
     * are revoked in the same transaction, serialized per email by an advisory
     * lock, so two parallel mints leave exactly one active token.
     */
    async insert(token: NewToken, options: { revokePrevious?: boolean } = {}) {
      if (!options.revokePrevious) return insertGrouped(token);
      return db.transaction(async (trx) => {
        await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [`one-time-token:${token.email}`]);
        await table(trx).where({ email: token.email, status: 'active' }).update({ status: 'revoked', revoked_at: token.createdAt });
        return insertOne(token, trx);
      });
    },

    async list(filter: TokenFilter, page: { page: number; pageSize: number }, now: Date) {
      const [{ count }] = (await applyFilter(table().count({ count: '*' }), filter, now)) as [{ count: number | string }];
      const rows = (await applyFilter(table().select('*'), filter, now)
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .limit(page.pageSize)
        .offset((page.page - 1) * page.pageSize)) as Row[];
      return { items: rows.map(toRecord), total: Number(count) };
    },

    /** Revokes an unconsumed token; answers the record, or undefined when it was not active. */
    async revoke(id: string, now: Date) {
      const [row] = await table().where({ id, status: 'active' }).update({ status: 'revoked', revoked_at: now }).returning('*');
      return row ? toRecord(row as Row) : undefined;
    },

    async delete(id: string) {
      return (await table().where({ id }).delete()) > 0;
    },

    async findById(id: string) {
      const row = await table().where({ id }).first();
      return row ? toRecord(row) : undefined;
    },

    async findByHash(hash: string) {
      const row = await table().where({ token_hash: hash }).first();
      return row ? toRecord(row) : undefined;
    },

    /** Consumes a token (`CONSUME_SQL`); undefined when none was consumed. */
    async consume(input: TokenConsumption) {
      const rows = await run<Row>(db, SQL.consume, consumptionValues(input));
      const row = rows[0] as Row | undefined;
      return row ? toRecord(row) : undefined;
    },
  };
}
