import type { Knex } from 'knex';

/**
 * Two more caches hear of changes on the `sesame_invalidate` channel
 * (src/db/invalidation.ts):
 *
 * - oidc-provider's grants and access tokens (src/oidc/model-cache.ts):
 *   every UPDATE (a sign-in adding scopes to a grant it reuses) and DELETE
 *   (logout, revocation, ended sessions) of a live Grant or AccessToken row
 *   announces `models:<model>:<id>`. An INSERT needs no notice: the caches
 *   never keep a miss. Nor does an expired row (the cleanup's deletes): no
 *   cache serves it. The WHEN clause keeps every other write (codes,
 *   interactions, sessions, refresh tokens) from calling the function at all.
 * - whether a user has a confirmed authenticator (src/mfa/index.ts, asked at
 *   every sign-in): a factor added, confirmed or removed (also by the cascade
 *   of a user's deletion) announces `mfa:<user id>`; the `last_used_step`
 *   every TOTP verification writes does not.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION sesame_notify_model() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('sesame_invalidate', 'models:' || OLD.model_name || ':' || OLD.id);
      RETURN NULL;
    END
    $$`);
  await knex.raw(`
    CREATE TRIGGER models_invalidate AFTER UPDATE OR DELETE ON oidc_model_instances FOR EACH ROW
    WHEN (OLD.model_name IN ('Grant', 'AccessToken') AND (OLD.expires_at IS NULL OR OLD.expires_at > now()))
    EXECUTE FUNCTION sesame_notify_model()`);
  await knex.raw(`
    CREATE FUNCTION sesame_notify_mfa() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('sesame_invalidate', 'mfa:' || OLD.user_id);
      END IF;
      IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('sesame_invalidate', 'mfa:' || NEW.user_id);
      END IF;
      RETURN NULL;
    END
    $$`);
  await knex.raw('CREATE TRIGGER mfa_factors_invalidate AFTER INSERT OR DELETE ON user_mfa_factors FOR EACH ROW EXECUTE FUNCTION sesame_notify_mfa()');
  await knex.raw(`
    CREATE TRIGGER mfa_factors_invalidate_update AFTER UPDATE ON user_mfa_factors FOR EACH ROW
    WHEN (OLD.confirmed_at IS DISTINCT FROM NEW.confirmed_at OR OLD.user_id IS DISTINCT FROM NEW.user_id OR OLD.type IS DISTINCT FROM NEW.type)
    EXECUTE FUNCTION sesame_notify_mfa()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER mfa_factors_invalidate_update ON user_mfa_factors');
  await knex.raw('DROP TRIGGER mfa_factors_invalidate ON user_mfa_factors');
  await knex.raw('DROP FUNCTION sesame_notify_mfa()');
  await knex.raw('DROP TRIGGER models_invalidate ON oidc_model_instances');
  await knex.raw('DROP FUNCTION sesame_notify_model()');
}
