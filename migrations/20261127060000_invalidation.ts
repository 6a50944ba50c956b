import type { Knex } from 'knex';

/**
 * Every change that makes a cached row stale announces itself on the
 * `sesame_invalidate` channel (src/db/invalidation.ts), whoever makes it: any
 * instance, the CLI, or SQL typed by hand. The payload is `<table>:<id>`, or
 * `hooks:*` (the hook cache is kept per event name, not per hook).
 *
 * A user is announced only when a column that decides their claims or access
 * changes, or the row goes: every sign-in updates `last_sign_in_at` and
 * `updated_at`, and those must not empty every instance's cache of that user.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION sesame_notify_invalidate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_TABLE_NAME = 'hooks' THEN
        PERFORM pg_notify('sesame_invalidate', 'hooks:*');
      ELSE
        PERFORM pg_notify('sesame_invalidate', TG_TABLE_NAME || ':' || OLD.id);
      END IF;
      RETURN NULL;
    END
    $$`);
  await knex.raw(`
    CREATE TRIGGER users_invalidate AFTER UPDATE ON users FOR EACH ROW
    WHEN (OLD.is_suspended IS DISTINCT FROM NEW.is_suspended
       OR OLD.primary_email IS DISTINCT FROM NEW.primary_email
       OR OLD.email_verified IS DISTINCT FROM NEW.email_verified
       OR OLD.name IS DISTINCT FROM NEW.name
       OR OLD.avatar IS DISTINCT FROM NEW.avatar
       OR OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION sesame_notify_invalidate()`);
  await knex.raw('CREATE TRIGGER users_invalidate_delete AFTER DELETE ON users FOR EACH ROW EXECUTE FUNCTION sesame_notify_invalidate()');
  await knex.raw('CREATE TRIGGER applications_invalidate AFTER UPDATE OR DELETE ON applications FOR EACH ROW EXECUTE FUNCTION sesame_notify_invalidate()');
  // One notice per statement: any hook change empties the whole hook cache anyway.
  await knex.raw('CREATE TRIGGER hooks_invalidate AFTER INSERT OR UPDATE OR DELETE ON hooks FOR EACH STATEMENT EXECUTE FUNCTION sesame_notify_invalidate()');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER hooks_invalidate ON hooks');
  await knex.raw('DROP TRIGGER applications_invalidate ON applications');
  await knex.raw('DROP TRIGGER users_invalidate_delete ON users');
  await knex.raw('DROP TRIGGER users_invalidate ON users');
  await knex.raw('DROP FUNCTION sesame_notify_invalidate()');
}
