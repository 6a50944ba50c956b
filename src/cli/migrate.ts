import { migrations, migrationSource } from '../../migrations/index.ts';
import { migrateToLatest, rollbackLast, type Database } from '../db/index.ts';
import { parseOptions } from './args.ts';
import { CliError, subcommands, type Command } from './context.ts';

export type MigrationStatus = { applied: string[]; pending: string[]; unknown: string[] };

/**
 * Applied and pending migrations by name, plus applied ones this version does
 * not know (the database was migrated by a newer Sesame). The table name must
 * match src/db/index.ts (knex's default).
 */
export async function migrationStatus(db: Database): Promise<MigrationStatus> {
  const [completed, pending] = (await db.migrate.list({
    migrationSource,
    tableName: 'knex_migrations',
    disableMigrationsListValidation: true,
  })) as [Array<{ name: string }>, typeof migrations];
  const known = new Set(migrations.map((migration) => migration.name));
  const applied = completed.map((migration) => migration.name);
  return {
    applied,
    pending: pending.map((migration) => migration.name),
    unknown: applied.filter((name) => !known.has(name)),
  };
}

function refuseUnknown(status: MigrationStatus): void {
  if (status.unknown.length > 0) {
    throw new CliError(
      `The database has migrations this version of Sesame does not know (${status.unknown.join(', ')}): was it upgraded by a newer version?`,
    );
  }
}

const usage = `Usage: sesame migrate up|down|status [--json]

  up       Apply every pending migration (the server also does this at start).
  down     Undo the newest applied migration only.
  status   List applied and pending migrations by name.

Unlike the other commands, migrate does not migrate first.`;

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'Apply, undo or list database migrations',
  usage,
  run: subcommands('migrate', {
    async up(args, context) {
      parseOptions(args, {});
      const db = await context.database();
      const before = await migrationStatus(db);
      refuseUnknown(before);
      await migrateToLatest(db);
      const human =
        before.pending.length === 0
          ? `Nothing to migrate: all ${before.applied.length} migrations are applied.`
          : `Applied ${before.pending.length} migration${before.pending.length === 1 ? '' : 's'}:\n${before.pending.map((name) => `  ${name}`).join('\n')}`;
      return { human, json: { migrated: before.pending } };
    },

    async down(args, context) {
      parseOptions(args, {});
      const db = await context.database();
      const before = await migrationStatus(db);
      refuseUnknown(before);
      const newest = before.applied.at(-1);
      if (!newest) return { human: 'Nothing to undo: no migration is applied.', json: { rolledBack: null } };
      await rollbackLast(db);
      return { human: `Undid ${newest}.\nRun \`sesame migrate up\` (or start the server) to apply it again.`, json: { rolledBack: newest } };
    },

    async status(args, context) {
      parseOptions(args, {});
      const status = await migrationStatus(await context.database());
      const lines = [
        ...status.applied.map((name) => `${status.unknown.includes(name) ? 'unknown' : 'applied'}  ${name}`),
        ...status.pending.map((name) => `pending  ${name}`),
      ];
      const summary = `${status.applied.length} applied, ${status.pending.length} pending${
        status.unknown.length > 0 ? `, ${status.unknown.length} unknown to this version` : ''
      }.`;
      return { human: [...lines, '', summary].join('\n'), json: status };
    },
  }),
};
