import { describe, expect, it } from 'vitest';
import { migrateToLatest, pendingMigrations, rollbackAll, rollbackLast, type Database } from '../../src/db/index.ts';
import { migrations } from '../../migrations/index.ts';
import { databaseKind, withScratchDatabase } from '../helpers/db.ts';

const tables = [
  'applications',
  'users',
  'one_time_tokens',
  'oidc_model_instances',
  'signing_keys',
  'organizations',
  'organization_roles',
  'organization_user_relations',
  'organization_role_user_relations',
  'organization_jit_roles',
  'organization_jit_email_domains',
  'organization_invitations',
  'cookie_keys',
  'sign_in_settings',
  'sign_in_codes',
  'user_mfa_factors',
  'user_backup_codes',
  'interaction_attempts',
  'banned_ips',
  'rate_limits',
  'audit_logs',
  'hooks',
  'hook_deliveries',
];

async function existingTables(db: Database): Promise<string[]> {
  const present: string[] = [];
  for (const table of tables) {
    if (await db.schema.hasTable(table)) present.push(table);
  }
  return present;
}

describe(`migrations (${databaseKind})`, () => {
  it('go up to the latest schema, all the way down, and up again', async () => {
    await withScratchDatabase(async (db) => {
      expect(await existingTables(db)).toEqual([]);

      await migrateToLatest(db);
      expect(await existingTables(db)).toEqual(tables);
      expect(await pendingMigrations(db)).toBe(0);

      await rollbackAll(db);
      expect(await existingTables(db)).toEqual([]);
      expect(await pendingMigrations(db)).toBeGreaterThan(0);

      await migrateToLatest(db);
      expect(await existingTables(db)).toEqual(tables);
      expect(await pendingMigrations(db)).toBe(0);
    });
  });

  it('leave a working schema after going down and up again, and running them again keeps the data', async () => {
    await withScratchDatabase(async (db) => {
      await migrateToLatest(db);
      await rollbackAll(db);
      await migrateToLatest(db);
      await db('users').insert({ id: 'u1', primary_email: 'ada@example.test' });
      // The case-insensitive unique email index came back with the table.
      await expect(db('users').insert({ id: 'u2', primary_email: 'ADA@example.test' })).rejects.toThrow();

      await migrateToLatest(db);
      expect(await db('users').where({ id: 'u1' }).first()).toBeDefined();
      expect(await pendingMigrations(db)).toBe(0);
    });
  });

  it('undo one at a time, newest first, each with a working down', async () => {
    await withScratchDatabase(async (db) => {
      await migrateToLatest(db);
      for (let applied = migrations.length; applied > 0; applied -= 1) {
        expect(await pendingMigrations(db)).toBe(migrations.length - applied);
        await rollbackLast(db);
      }
      expect(await existingTables(db)).toEqual([]);
      await migrateToLatest(db);
      expect(await existingTables(db)).toEqual(tables);
    });
  });

  it('take the abuse tables away and back with their migration (and the audit, performance and invalidation ones after it), the rest untouched', async () => {
    await withScratchDatabase(async (db) => {
      await migrateToLatest(db);
      await db('banned_ips').insert({ ip: '192.0.2.1', reason: 'x', source: 'manual' });
      await expect(db('banned_ips').insert({ ip: '192.0.2.2', reason: 'x', source: 'guessed' })).rejects.toThrow();
      await rollbackLast(db); // token expiry index
      await rollbackLast(db); // settings and ban invalidation
      await rollbackLast(db); // model rows
      await rollbackLast(db); // model and MFA invalidation
      await rollbackLast(db); // invalidation
      await rollbackLast(db); // performance
      await rollbackLast(db); // audit
      await rollbackLast(db); // abuse
      expect(await existingTables(db)).toEqual(tables.filter((table) => !['banned_ips', 'rate_limits', 'audit_logs', 'hooks', 'hook_deliveries'].includes(table)));
      await migrateToLatest(db);
      expect(await db('banned_ips').select('ip')).toEqual([]);
      // rate-limiter-flexible's upsert works on the table the migration made.
      await db.raw(`INSERT INTO rate_limits VALUES ('k', 1, ?) ON CONFLICT (key) DO UPDATE SET points = rate_limits.points + 1`, [Date.now() + 1000]);
      expect((await db('rate_limits').where({ key: 'k' }).first()).points).toBe(1);
    });
  });

  it('move the account of provider rows into an indexed column generated from the payload, and back again', async () => {
    await withScratchDatabase(async (db) => {
      const indexes = async () =>
        ((await db.raw(`SELECT indexname FROM pg_indexes WHERE tablename = 'oidc_model_instances' ORDER BY indexname`)) as { rows: Array<{ indexname: string }> }).rows.map(
          (row) => row.indexname,
        );
      const options = async () =>
        ((await db.raw(`SELECT reloptions FROM pg_class WHERE relname = 'oidc_model_instances'`)) as { rows: Array<{ reloptions: string[] | null }> }).rows[0]?.reloptions;
      await migrateToLatest(db);
      await rollbackLast(db); // token expiry index
      await rollbackLast(db); // settings and ban invalidation
      await rollbackLast(db); // model rows
      expect(await indexes()).toContain('oidc_model_instances_account_id');
      await db('oidc_model_instances').insert([
        { model_name: 'Session', id: 's1', payload: JSON.stringify({ accountId: 'u1', uid: 'x' }) },
        { model_name: 'Interaction', id: 'i1', payload: JSON.stringify({ uid: 'y' }) },
      ]);

      await migrateToLatest(db);
      // Rows from before, and rows written as an earlier version writes them (without the column), carry their account.
      await db('oidc_model_instances').insert({ model_name: 'Grant', id: 'g1', payload: JSON.stringify({ accountId: 'u2' }) });
      const rows = await db('oidc_model_instances').orderBy('id').select('id', 'account_id');
      expect(rows).toEqual([
        { id: 'g1', account_id: 'u2' },
        { id: 'i1', account_id: null },
        { id: 's1', account_id: 'u1' },
      ]);
      // It follows the payload and cannot be written otherwise.
      await db('oidc_model_instances').where({ id: 'g1' }).update({ payload: JSON.stringify({ accountId: 'u3' }) });
      expect(await db('oidc_model_instances').where({ id: 'g1' }).first('account_id')).toEqual({ account_id: 'u3' });
      await expect(db('oidc_model_instances').where({ id: 'g1' }).update({ account_id: 'someone-else' })).rejects.toThrow();
      expect(await indexes()).toContain('oidc_model_instances_account');
      expect(await indexes()).not.toContain('oidc_model_instances_account_id');
      expect(await options()).toEqual(['fillfactor=80', 'autovacuum_vacuum_scale_factor=0.02', 'autovacuum_vacuum_insert_scale_factor=0.02']);

      await rollbackLast(db); // token expiry index
      await rollbackLast(db); // settings and ban invalidation
      await rollbackLast(db);
      expect(await indexes()).toContain('oidc_model_instances_account_id');
      expect(await indexes()).not.toContain('oidc_model_instances_account');
      expect(await options()).toBeNull();
      expect(await db.schema.hasColumn('oidc_model_instances', 'account_id')).toBe(false);
    });
  });

  it('add the token-list indexes and take them away again, restoring the ones they replace', async () => {
    await withScratchDatabase(async (db) => {
      const indexes = async () =>
        ((await db.raw(`SELECT indexname FROM pg_indexes WHERE tablename = 'one_time_tokens' ORDER BY indexname`)) as { rows: Array<{ indexname: string }> }).rows.map(
          (row) => row.indexname,
        );
      await migrateToLatest(db);
      const latest = await indexes();
      expect(latest).toContain('one_time_tokens_active_expires_at');
      expect(latest).toContain('one_time_tokens_email_status_created_at');
      expect(latest).not.toContain('one_time_tokens_email_status_index');
      // The plain expiry index, which no query used, is gone; its migration's down brings it back.
      expect(latest).not.toContain('one_time_tokens_expires_at_index');
      await rollbackLast(db); // token expiry index
      expect(await indexes()).toContain('one_time_tokens_expires_at_index');
      await rollbackLast(db); // settings and ban invalidation
      await rollbackLast(db); // model rows
      await rollbackLast(db); // model and MFA invalidation
      await rollbackLast(db); // invalidation
      await rollbackLast(db); // performance
      const before = await indexes();
      expect(before).toContain('one_time_tokens_email_status_index');
      expect(before).not.toContain('one_time_tokens_active_expires_at');
      expect(before).not.toContain('one_time_tokens_email_status_created_at');
      await migrateToLatest(db);
      expect(await indexes()).toEqual(latest);
    });
  });

  it('add the cache invalidation triggers (users, applications, hooks; then provider models and authenticators; then settings and bans) and take them away again', async () => {
    await withScratchDatabase(async (db) => {
      const triggers = async () =>
        ((await db.raw(`SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname`)) as { rows: Array<{ tgname: string }> }).rows.map(
          (row) => row.tgname,
        );
      await migrateToLatest(db);
      const all = ['applications_invalidate', 'hooks_invalidate', 'mfa_factors_invalidate', 'mfa_factors_invalidate_update', 'models_invalidate', 'users_invalidate', 'users_invalidate_delete'];
      const latest = [...all, 'banned_ips_invalidate', 'sign_in_settings_invalidate'].sort();
      expect(await triggers()).toEqual(latest);
      await rollbackLast(db); // token expiry index
      await rollbackLast(db); // settings and ban invalidation
      expect(await triggers()).toEqual(all);
      await rollbackLast(db); // model rows
      await rollbackLast(db); // model and MFA invalidation
      expect(await triggers()).toEqual(all.filter((name) => !name.startsWith('models_') && !name.startsWith('mfa_')));
      await rollbackLast(db); // invalidation
      expect(await triggers()).toEqual([]);
      // Writes work without them.
      await db('users').insert({ id: 'u1', primary_email: 'ada@example.test' });
      await db('users').where({ id: 'u1' }).update({ is_suspended: true });
      const grant = () => db('oidc_model_instances').where({ model_name: 'Grant', id: 'g1' });
      await db('oidc_model_instances').insert({ model_name: 'Grant', id: 'g1', payload: '{}' });
      await grant().update({ payload: '{"a":1}' });
      await migrateToLatest(db);
      expect(await triggers()).toEqual(latest);
      await db('users').where({ id: 'u1' }).update({ is_suspended: false });
      await grant().update({ payload: '{"a":2}' });
      await grant().delete();
    });
  });
});
