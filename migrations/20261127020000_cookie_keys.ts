import type { Knex } from 'knex';

/** Cookie signing keys live in the database (sealed) so every instance shares them and they can rotate. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('cookie_keys', (t) => {
    t.text('id').primary();
    t.text('key_sealed').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('retired_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('cookie_keys');
}
