import type { Knex } from 'knex';

/**
 * Indexes for what got slower as history grew (bench/RESULTS.md):
 * - the Management API's token list by status: "active" (and "expired") filter
 *   on `status = 'active'` and `expires_at`, and count the matches; a partial
 *   index on `expires_at` for the active rows only finds and counts the live
 *   ones without reading every consumed or revoked token;
 * - the per-email page (`?email=…&status=…`, newest first): `(email, status,
 *   created_at DESC)` finds, orders and limits in the index. It replaces
 *   `(email, status)`, which it covers.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE INDEX one_time_tokens_active_expires_at ON one_time_tokens (expires_at) WHERE status = 'active'`);
  await knex.raw('CREATE INDEX one_time_tokens_email_status_created_at ON one_time_tokens (email, status, created_at DESC)');
  await knex.raw('DROP INDEX one_time_tokens_email_status_index');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX one_time_tokens_email_status_index ON one_time_tokens (email, status)');
  await knex.raw('DROP INDEX one_time_tokens_email_status_created_at');
  await knex.raw('DROP INDEX one_time_tokens_active_expires_at');
}
