import type { Knex } from 'knex';

/**
 * oidc-provider's rows are the most rewritten in the database: a sign-in
 * saves its Interaction again after the confirm step, and a code or refresh
 * token is consumed after it is written. PostgreSQL can rewrite a row in place
 * (a HOT update: no new entry in any index, pruned on the page itself) only
 * when no indexed column changes and the row's page has room. Neither held:
 *
 * - the index of a user's sessions and grants was on the expression
 *   `payload->>'accountId'`, so every write of `payload` changed an indexed
 *   column and went through all six indexes. The account is now a stored
 *   generated column, `account_id`, and that is indexed: PostgreSQL compares
 *   its old and new values, which a rewrite of the same model keeps equal.
 *   Being generated, it can never disagree with the payload, whoever writes
 *   the row (an instance of an earlier version during a rolling upgrade
 *   included), so ending a user's sessions still finds every one;
 * - pages were filled to the last byte by the rows inserted after, so even a
 *   consumption (only `consumed_at`) had to move the row. A fillfactor of 80
 *   leaves a fifth of each new page for the rewrites of its rows;
 * - autovacuum waited for a fifth of the table to be dead (the default): rows
 *   here live for minutes, so it now starts at 2%, in smaller, cheaper runs.
 *
 * (The adapter also writes `expires_at` from the model's own `exp`, so a save
 * that keeps the expiry keeps the column as it was.)
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE oidc_model_instances ADD COLUMN account_id text GENERATED ALWAYS AS (payload->>'accountId') STORED`);
  await knex.raw('CREATE INDEX oidc_model_instances_account ON oidc_model_instances (model_name, account_id) WHERE account_id IS NOT NULL');
  await knex.raw('DROP INDEX oidc_model_instances_account_id');
  await knex.raw('ALTER TABLE oidc_model_instances SET (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE oidc_model_instances RESET (fillfactor, autovacuum_vacuum_scale_factor, autovacuum_vacuum_insert_scale_factor)');
  await knex.raw(
    `CREATE INDEX oidc_model_instances_account_id ON oidc_model_instances (model_name, (payload->>'accountId'))
     WHERE (payload->>'accountId') IS NOT NULL`,
  );
  await knex.raw('DROP INDEX oidc_model_instances_account');
  await knex.raw('ALTER TABLE oidc_model_instances DROP COLUMN account_id');
}
