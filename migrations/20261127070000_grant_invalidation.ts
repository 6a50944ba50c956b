import type { Knex } from 'knex';

/**
 * oidc-provider's grants are cached by every instance (src/oidc/grant-cache.ts):
 * every UPDATE (a sign-in adding scopes to a grant it reuses) and DELETE
 * (logout, revocation, ended sessions, cleanup) of a Grant row announces
 * `grants:<id>` on the `sesame_invalidate` channel. An INSERT needs no notice,
 * the caches never keep a miss. The WHEN clauses keep every other model's
 * writes (tokens, interactions, sessions) from calling the function at all.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION sesame_notify_grant() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('sesame_invalidate', 'grants:' || OLD.id);
      RETURN NULL;
    END
    $$`);
  await knex.raw(`
    CREATE TRIGGER grants_invalidate AFTER UPDATE OR DELETE ON oidc_model_instances FOR EACH ROW
    WHEN (OLD.model_name = 'Grant')
    EXECUTE FUNCTION sesame_notify_grant()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER grants_invalidate ON oidc_model_instances');
  await knex.raw('DROP FUNCTION sesame_notify_grant()');
}
