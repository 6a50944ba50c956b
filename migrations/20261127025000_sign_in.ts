import type { Knex } from 'knex';

/**
 * The sign-in experience: one settings row, and the self-serve sign-in mails
 * (magic links with their code, email codes, registration codes), each bound to
 * the interaction that asked for it. Link tokens are stored as SHA-256, codes
 * as an HMAC keyed by SESAME_SECRET (six digits alone would be easy to invert).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sign_in_settings', (t) => {
    t.integer('id').primary();
    t.jsonb('settings').notNullable().defaultTo('{}');
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw('ALTER TABLE sign_in_settings ADD CONSTRAINT sign_in_settings_single_row CHECK (id = 1)');

  await knex.schema.createTable('sign_in_codes', (t) => {
    t.text('id').primary();
    t.text('interaction_uid').notNullable();
    t.text('client_id');
    t.text('email').notNullable();
    t.text('purpose').notNullable();
    t.text('token_hash').unique();
    t.text('code_hash').notNullable();
    t.text('reference').notNullable();
    t.text('status').notNullable().defaultTo('active');
    t.integer('attempts').notNullable().defaultTo(0);
    t.jsonb('context').notNullable().defaultTo('{}');
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('consumed_at', { useTz: true });
    t.index(['email', 'status']);
    t.index(['interaction_uid', 'created_at']);
    t.index(['expires_at']);
  });
  await knex.raw(
    `ALTER TABLE sign_in_codes ADD CONSTRAINT sign_in_codes_purpose_check
     CHECK (purpose IN ('magic_link', 'email_code', 'register'))`,
  );
  await knex.raw(
    `ALTER TABLE sign_in_codes ADD CONSTRAINT sign_in_codes_status_check
     CHECK (status IN ('active', 'consumed', 'superseded', 'locked'))`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('sign_in_codes');
  await knex.schema.dropTable('sign_in_settings');
}
