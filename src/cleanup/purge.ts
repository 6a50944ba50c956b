import type { Knex } from 'knex';
import type { Cutoffs } from './cutoffs.ts';

export type CleanupKind =
  | 'providerModels'
  | 'expiredTokens'
  | 'consumedTokens'
  | 'revokedTokens'
  | 'expiredBans'
  | 'rateLimits'
  | 'auditLogs'
  | 'hookDeliveries'
  | 'signInCodes'
  | 'interactionAttempts';

/** Deletes up to `limit` rows of one kind inside the run's transaction; answers how many. */
export type Purge = { kind: CleanupKind; deleteBatch(trx: Knex, cutoffs: Cutoffs, limit: number): Promise<number> };

/**
 * One bounded DELETE: the rows are picked by primary key in a subquery with a
 * LIMIT (PostgreSQL's DELETE has none). SKIP LOCKED: a row a request is using
 * right now is left for the next batch or run instead of making the job wait.
 */
async function deleteByKey(trx: Knex, table: string, key: string[], pick: (query: Knex.QueryBuilder) => void, limit: number): Promise<number> {
  const picked = trx(table).select(key).modify(pick).limit(limit).forUpdate().skipLocked();
  const [column] = key;
  const result: unknown = await (key.length === 1 && column ? trx(table).whereIn(column, picked) : trx(table).whereIn(key, picked)).delete();
  // Inside a transaction the embedded client answers the driver's result, not
  // the count (src/db/index.ts fixes that on the root client only).
  return typeof result === 'number' ? result : Number((result as { rowCount?: number }).rowCount ?? 0);
}

const tokens = (trx: Knex, pick: (query: Knex.QueryBuilder) => void, limit: number) =>
  deleteByKey(trx, 'one_time_tokens', ['id'], pick, limit);

/**
 * What the cleanup job deletes, in order. Invitations keep their record: the
 * foreign key sets their `one_time_token_id` to NULL, and a pending one reads
 * as Expired by its own `expires_at` (the token's).
 *
 * For consumed and revoked tokens, `created_at < cutoff` follows from the rule
 * (a token is used after it is made) and lets PostgreSQL walk the created_at
 * index instead of scanning the table.
 *
 * Audit logs go by age alone; webhook deliveries by age once they are over
 * (a pending one is kept until it succeeds or fails for good).
 */
export const purges: Purge[] = [
  {
    // Self-serve sign-in mails: useless once expired, whatever their state (the audit log keeps what happened).
    kind: 'signInCodes',
    deleteBatch: (trx, cutoffs, limit) =>
      deleteByKey(trx, 'sign_in_codes', ['id'], (q) => q.where('expires_at', '<', cutoffs.providerModelsExpiredBefore), limit),
  },
  {
    // Second-factor failure counts and marks of one sign-in: they live an hour.
    kind: 'interactionAttempts',
    deleteBatch: (trx, cutoffs, limit) =>
      deleteByKey(trx, 'interaction_attempts', ['interaction_uid', 'kind'], (q) => q.where('expires_at', '<', cutoffs.expiredBefore), limit),
  },
  {
    kind: 'providerModels',
    deleteBatch: (trx, cutoffs, limit) =>
      deleteByKey(trx, 'oidc_model_instances', ['model_name', 'id'], (q) => q.where('expires_at', '<', cutoffs.providerModelsExpiredBefore), limit),
  },
  {
    kind: 'expiredTokens',
    deleteBatch: (trx, cutoffs, limit) =>
      tokens(trx, (q) => q.where('status', 'active').andWhere('expires_at', '<', cutoffs.tokensExpiredBefore), limit),
  },
  {
    kind: 'consumedTokens',
    deleteBatch: (trx, cutoffs, limit) =>
      tokens(
        trx,
        (q) => q.where('status', 'consumed').andWhere('consumed_at', '<', cutoffs.consumedBefore).andWhere('created_at', '<', cutoffs.consumedBefore),
        limit,
      ),
  },
  {
    kind: 'revokedTokens',
    deleteBatch: (trx, cutoffs, limit) =>
      tokens(
        trx,
        (q) => q.where('status', 'revoked').andWhere('revoked_at', '<', cutoffs.revokedBefore).andWhere('created_at', '<', cutoffs.revokedBefore),
        limit,
      ),
  },
  {
    kind: 'expiredBans',
    deleteBatch: (trx, cutoffs, limit) => deleteByKey(trx, 'banned_ips', ['ip'], (q) => q.where('expires_at', '<', cutoffs.expiredBefore), limit),
  },
  {
    // rate-limiter-flexible's counters (PostgreSQL only): `expire` is in epoch milliseconds.
    kind: 'rateLimits',
    deleteBatch: (trx, cutoffs, limit) =>
      deleteByKey(trx, 'rate_limits', ['key'], (q) => q.where('expire', '<', cutoffs.expiredBefore.getTime()), limit),
  },
  {
    kind: 'auditLogs',
    deleteBatch: (trx, cutoffs, limit) => deleteByKey(trx, 'audit_logs', ['id'], (q) => q.where('created_at', '<', cutoffs.auditLogsBefore), limit),
  },
  {
    kind: 'hookDeliveries',
    deleteBatch: (trx, cutoffs, limit) =>
      deleteByKey(trx, 'hook_deliveries', ['id'], (q) => q.whereIn('status', ['succeeded', 'failed']).andWhere('created_at', '<', cutoffs.hookDeliveriesBefore), limit),
  },
];
