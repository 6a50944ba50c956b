import type { Knex } from 'knex';

/**
 * Drops the plain index on `one_time_tokens.expires_at`, which no query
 * uses: every statement that filters on expiry also filters on
 * `status = 'active'` (the token list's "active" and "expired", the purge of
 * expired tokens) and is served by the partial index
 * `one_time_tokens_active_expires_at`; the consume finds its token by
 * `token_hash`. The index still cost an entry for every mint and another for
 * every consume, revoke and expiry (a status change is never a HOT update,
 * status being indexed): about 1 of the 6 index entries each of those writes.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS one_time_tokens_expires_at_index');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX one_time_tokens_expires_at_index ON one_time_tokens (expires_at)');
}
