import type { Knex } from 'knex';

/**
 * The audit log (one row per security event, never a token, code or
 * password), webhooks and their delivery log. Deliveries are rows so a
 * restart loses none; their body is sealed (a MagicLink.Requested body carries
 * a live link) and cleared once the delivery is over.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_logs', (t) => {
    t.bigIncrements('id').primary();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.text('event').notNullable();
    t.text('result').notNullable();
    t.text('user_id');
    t.text('email');
    t.text('application_id');
    t.text('ip');
    t.text('user_agent');
    t.text('device_fingerprint');
    t.text('request_id');
    t.jsonb('data').notNullable().defaultTo('{}');
    // Time first for the retention trim and unfiltered listing; each filter with time to page it.
    t.index(['created_at']);
    t.index(['event', 'created_at']);
    t.index(['user_id', 'created_at']);
    t.index(['email', 'created_at']);
    t.index(['ip', 'created_at']);
    t.index(['application_id', 'created_at']);
  });

  await knex.schema.createTable('hooks', (t) => {
    t.text('id').primary();
    t.text('name').notNullable();
    t.text('url').notNullable();
    t.jsonb('events').notNullable();
    t.boolean('enabled').notNullable().defaultTo(true);
    t.text('secret_sealed').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
  });

  await knex.schema.createTable('hook_deliveries', (t) => {
    t.text('id').primary();
    t.text('hook_id').notNullable().references('hooks.id').onDelete('CASCADE');
    t.text('event').notNullable();
    // pending → succeeded | failed
    t.text('status').notNullable();
    t.text('body_sealed');
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('next_attempt_at', { useTz: true });
    t.timestamp('locked_until', { useTz: true });
    t.timestamp('last_attempt_at', { useTz: true });
    t.integer('response_status');
    t.text('error');
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('completed_at', { useTz: true });
    t.index(['hook_id', 'created_at']);
    t.index(['created_at']);
  });
  // What the worker polls: only the pending rows, by when they are due.
  await knex.raw(`CREATE INDEX hook_deliveries_due ON hook_deliveries (next_attempt_at) WHERE status = 'pending'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('hook_deliveries');
  await knex.schema.dropTable('hooks');
  await knex.schema.dropTable('audit_logs');
}
