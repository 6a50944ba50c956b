import type { Knex } from 'knex';

/**
 * Second factors: a TOTP authenticator per user (its secret sealed with
 * AES-256-GCM, the last accepted time step so a code works once), backup
 * codes (HMAC-hashed, single use), whether optional MFA was offered, and
 * failed attempts per interaction (five lock a factor for that sign-in).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('user_mfa_factors', (t) => {
    t.text('id').primary();
    t.text('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('type').notNullable();
    t.text('secret_sealed').notNullable();
    t.bigInteger('last_used_step');
    t.timestamp('confirmed_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['user_id', 'type']);
  });
  await knex.raw(`ALTER TABLE user_mfa_factors ADD CONSTRAINT user_mfa_factors_type_check CHECK (type IN ('totp'))`);

  await knex.schema.createTable('user_backup_codes', (t) => {
    t.text('id').primary();
    t.text('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('code_hash').notNullable();
    t.timestamp('used_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['user_id']);
    t.unique(['user_id', 'code_hash']);
  });

  await knex.schema.alterTable('users', (t) => {
    t.timestamp('mfa_offered_at', { useTz: true });
  });

  await knex.schema.createTable('interaction_attempts', (t) => {
    t.text('interaction_uid').notNullable();
    t.text('kind').notNullable();
    t.integer('failures').notNullable().defaultTo(0);
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.primary(['interaction_uid', 'kind']);
    t.index(['expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('interaction_attempts');
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('mfa_offered_at');
  });
  await knex.schema.dropTable('user_backup_codes');
  await knex.schema.dropTable('user_mfa_factors');
}
