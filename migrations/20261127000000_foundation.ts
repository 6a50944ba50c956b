import type { Knex } from 'knex';

/** Foundation schema: applications, users, one-time tokens, OIDC provider state, signing keys. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('applications', (t) => {
    t.text('id').primary();
    t.text('name').notNullable();
    t.text('type').notNullable();
    t.text('description');
    // Client secrets must be recoverable (oidc-provider compares them and may use them
    // as HMAC keys), so they are sealed with AES-256-GCM rather than hashed.
    t.text('secret_sealed');
    t.jsonb('oidc_client_metadata').notNullable().defaultTo('{}');
    t.boolean('is_third_party').notNullable().defaultTo(false);
    t.boolean('management_api_access').notNullable().defaultTo(false);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(
    `ALTER TABLE applications ADD CONSTRAINT applications_type_check
     CHECK (type IN ('Traditional', 'SPA', 'Native', 'MachineToMachine'))`,
  );

  await knex.schema.createTable('users', (t) => {
    t.text('id').primary();
    t.text('primary_email');
    t.boolean('email_verified').notNullable().defaultTo(false);
    t.text('name');
    t.boolean('is_suspended').notNullable().defaultTo(false);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_sign_in_at', { useTz: true });
  });
  await knex.raw('CREATE UNIQUE INDEX users_primary_email_lower_key ON users (lower(primary_email))');

  await knex.schema.createTable('one_time_tokens', (t) => {
    t.text('id').primary();
    t.text('email').notNullable();
    t.text('token_hash').notNullable().unique();
    t.text('status').notNullable().defaultTo('active');
    t.jsonb('context').notNullable().defaultTo('{}');
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('consumed_at', { useTz: true });
    t.text('consumed_interaction_uid');
    t.timestamp('revoked_at', { useTz: true });
    t.index(['email', 'status']);
    t.index(['expires_at']);
  });
  await knex.raw(
    `ALTER TABLE one_time_tokens ADD CONSTRAINT one_time_tokens_status_check
     CHECK (status IN ('active', 'consumed', 'revoked'))`,
  );

  await knex.schema.createTable('oidc_model_instances', (t) => {
    t.text('model_name').notNullable();
    t.text('id').notNullable();
    t.jsonb('payload').notNullable();
    t.timestamp('expires_at', { useTz: true });
    t.timestamp('consumed_at', { useTz: true });
    t.text('grant_id');
    t.text('uid');
    t.text('user_code');
    t.primary(['model_name', 'id']);
    t.index(['model_name', 'grant_id']);
    t.index(['expires_at']);
  });
  await knex.raw(
    'CREATE UNIQUE INDEX oidc_model_instances_uid_key ON oidc_model_instances (model_name, uid) WHERE uid IS NOT NULL',
  );
  await knex.raw(
    'CREATE UNIQUE INDEX oidc_model_instances_user_code_key ON oidc_model_instances (model_name, user_code) WHERE user_code IS NOT NULL',
  );

  await knex.schema.createTable('signing_keys', (t) => {
    t.text('kid').primary();
    t.text('alg').notNullable();
    t.text('private_jwk_sealed').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('retired_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('signing_keys');
  await knex.schema.dropTable('oidc_model_instances');
  await knex.schema.dropTable('one_time_tokens');
  await knex.schema.dropTable('users');
  await knex.schema.dropTable('applications');
}
