import type { Knex } from 'knex';

/**
 * Abuse protection. `banned_ips`: manual and automatic bans (src/bans/), one
 * row per canonical address; `expires_at` NULL means until lifted.
 * `rate_limits`: the counters of rate-limiter-flexible's PostgreSQL store
 * (src/ratelimit/), in the exact shape it expects (`expire` in epoch
 * milliseconds); created here, not by the library, so migrations stay the only
 * schema source. On the embedded database the counters are kept in memory and
 * this table stays empty.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('banned_ips', (t) => {
    t.text('ip').primary();
    t.text('reason').notNullable();
    t.text('source').notNullable();
    t.text('created_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true });
    t.index(['expires_at']);
  });
  await knex.raw(`ALTER TABLE banned_ips ADD CONSTRAINT banned_ips_source_check CHECK (source IN ('manual', 'automatic'))`);
  await knex.schema.createTable('rate_limits', (t) => {
    t.string('key', 255).primary();
    t.integer('points').notNullable().defaultTo(0);
    t.bigInteger('expire');
    t.index(['expire']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('rate_limits');
  await knex.schema.dropTable('banned_ips');
}
