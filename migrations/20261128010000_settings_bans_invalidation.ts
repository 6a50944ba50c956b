import type { Knex } from 'knex';

/**
 * The sign-in settings and the IP ban list announce their changes on the
 * `sesame_invalidate` channel too (src/db/invalidation.ts), as
 * `sign_in_settings:*` and `banned_ips:*`: each instance keeps one copy of
 * each, and a change made anywhere (another instance, the CLI, SQL by hand)
 * reaches every copy at once instead of when it next goes stale. Row
 * triggers with a constant payload: PostgreSQL delivers one notice per
 * transaction however many rows it changed, and a statement that changed
 * nothing (the cleanup finding no expired ban) sends none.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION sesame_notify_table() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('sesame_invalidate', TG_TABLE_NAME || ':*');
      RETURN NULL;
    END
    $$`);
  await knex.raw('CREATE TRIGGER sign_in_settings_invalidate AFTER INSERT OR UPDATE OR DELETE ON sign_in_settings FOR EACH ROW EXECUTE FUNCTION sesame_notify_table()');
  await knex.raw('CREATE TRIGGER banned_ips_invalidate AFTER INSERT OR UPDATE OR DELETE ON banned_ips FOR EACH ROW EXECUTE FUNCTION sesame_notify_table()');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER banned_ips_invalidate ON banned_ips');
  await knex.raw('DROP TRIGGER sign_in_settings_invalidate ON sign_in_settings');
  await knex.raw('DROP FUNCTION sesame_notify_table()');
}
