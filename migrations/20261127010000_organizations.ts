import type { Knex } from 'knex';

/**
 * Management API: passwords and avatars on users, organizations with roles,
 * memberships, just-in-time provisioning and invitations.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.text('password_hash');
    t.text('avatar');
  });
  await knex.schema.alterTable('one_time_tokens', (t) => {
    t.index(['created_at']);
  });
  // Sessions and grants of one user, for the sessions API and force logout.
  await knex.raw(
    `CREATE INDEX oidc_model_instances_account_id ON oidc_model_instances (model_name, (payload->>'accountId'))
     WHERE (payload->>'accountId') IS NOT NULL`,
  );

  await knex.schema.createTable('organizations', (t) => {
    t.text('id').primary();
    t.text('name').notNullable();
    t.text('description');
    t.jsonb('custom_data').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('organization_roles', (t) => {
    t.text('id').primary();
    t.text('name').notNullable();
    t.text('description');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw('CREATE UNIQUE INDEX organization_roles_name_key ON organization_roles (lower(name))');

  await knex.schema.createTable('organization_user_relations', (t) => {
    t.text('organization_id').notNullable().references('organizations.id').onDelete('CASCADE');
    t.text('user_id').notNullable().references('users.id').onDelete('CASCADE');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['organization_id', 'user_id']);
    t.index(['user_id']);
  });

  await knex.schema.createTable('organization_role_user_relations', (t) => {
    t.text('organization_id').notNullable();
    t.text('user_id').notNullable();
    t.text('organization_role_id').notNullable().references('organization_roles.id').onDelete('CASCADE');
    t.primary(['organization_id', 'user_id', 'organization_role_id']);
    // A role exists only with the membership it belongs to.
    t.foreign(['organization_id', 'user_id'])
      .references(['organization_id', 'user_id'])
      .inTable('organization_user_relations')
      .onDelete('CASCADE');
    t.index(['user_id']);
  });

  await knex.schema.createTable('organization_jit_roles', (t) => {
    t.text('organization_id').notNullable().references('organizations.id').onDelete('CASCADE');
    t.text('organization_role_id').notNullable().references('organization_roles.id').onDelete('CASCADE');
    t.primary(['organization_id', 'organization_role_id']);
  });

  await knex.schema.createTable('organization_jit_email_domains', (t) => {
    t.text('organization_id').notNullable().references('organizations.id').onDelete('CASCADE');
    t.text('email_domain').notNullable();
    t.primary(['organization_id', 'email_domain']);
    t.index(['email_domain']);
  });

  await knex.schema.createTable('organization_invitations', (t) => {
    t.text('id').primary();
    t.text('email').notNullable();
    t.text('organization_id').notNullable().references('organizations.id').onDelete('CASCADE');
    t.jsonb('role_ids').notNullable().defaultTo('[]');
    t.text('status').notNullable().defaultTo('Pending');
    t.text('one_time_token_id').references('one_time_tokens.id').onDelete('SET NULL');
    t.text('landing_uri').notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('accepted_at', { useTz: true });
    t.text('accepted_user_id').references('users.id').onDelete('SET NULL');
    t.text('inviter_client_id');
    t.index(['organization_id', 'status']);
    t.index(['email']);
    t.unique(['one_time_token_id']);
  });
  await knex.raw(
    `ALTER TABLE organization_invitations ADD CONSTRAINT organization_invitations_status_check
     CHECK (status IN ('Pending', 'Accepted', 'Revoked'))`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('organization_invitations');
  await knex.schema.dropTable('organization_jit_email_domains');
  await knex.schema.dropTable('organization_jit_roles');
  await knex.schema.dropTable('organization_role_user_relations');
  await knex.schema.dropTable('organization_user_relations');
  await knex.schema.dropTable('organization_roles');
  await knex.schema.dropTable('organizations');
  await knex.raw('DROP INDEX oidc_model_instances_account_id');
  await knex.schema.alterTable('one_time_tokens', (t) => {
    t.dropIndex(['created_at']);
  });
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('avatar');
    t.dropColumn('password_hash');
  });
}
