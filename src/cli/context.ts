import { pino } from 'pino';
import { loadConfig, type Config } from '../config.ts';
import { createCore, type Core } from '../core.ts';
import { dataDirOwner } from '../db/data-dir-lock.ts';
import { createDatabase, migrateToLatest, type Database } from '../db/index.ts';
import type { Logger } from '../logger.ts';
import { createKeyService, type KeyService } from '../oidc/key-service.ts';
import { ensureKeys, loadKeySet } from '../oidc/keys.ts';
import { UsageError } from './args.ts';

/** What a command prints: `human` for people, `json` (one document) with --json. */
export type Output = { human: string; json: unknown; exitCode?: 0 | 1 };

export type Command = {
  name: string;
  summary: string;
  usage: string;
  run(args: string[], context: CliContext): Promise<Output>;
};

export type Services = { config: Config; db: Database; core: Core; keys: KeyService };

/** A failure the CLI explains in one line (exit 1), like an AppError but outside the domain. */
export class CliError extends Error {
  override name = 'CliError';
}

export type CliContext = ReturnType<typeof createCliContext>;

/**
 * Opens what a command needs, once, from the same environment as the server:
 * DATABASE_URL, DATA_DIR and SESAME_SECRET select the same database and keys.
 */
export function createCliContext(options: { env: NodeJS.ProcessEnv; debug: boolean; readStdin: () => Promise<string> }) {
  let config: Config | undefined;
  let db: Database | undefined;
  // Logs go to stderr so stdout stays the command's output (and one JSON document with --json).
  const logger: Logger = pino({ level: options.debug ? 'debug' : 'warn', base: undefined }, pino.destination({ fd: 2, sync: true }));

  const context = {
    env: options.env,
    logger,
    readStdin: options.readStdin,

    config(): Config {
      return (config ??= loadConfig(options.env));
    },

    /** The database, checked reachable; migrations are the caller's business. */
    async database(): Promise<Database> {
      if (db) return db;
      const current = context.config();
      if (!current.databaseUrl) refuseEmbeddedInUse(current.dataDir);
      const opened = createDatabase(
        current.databaseUrl
          ? { kind: 'postgres', url: current.databaseUrl, poolMax: 2, preparedStatements: current.preparedStatements, logger }
          : { kind: 'embedded', dataDir: current.dataDir, logger },
        (error) => logger.warn({ err: error }, 'database connection error'),
      );
      db = opened;
      try {
        await opened.raw('SELECT 1');
      } catch (error) {
        throw new CliError(`The database could not be reached: ${(error as Error).message}`, { cause: error });
      }
      return opened;
    },

    /** The domain services, on a database migrated to latest and with keys, as the server starts. */
    async services(): Promise<Services> {
      const current = context.config();
      const database = await context.database();
      await migrateToLatest(database);
      await ensureKeys(database, current.secret);
      // Refuse another SESAME_SECRET before writing anything sealed with it (keys,
      // client secrets): the servers could not open it. Throws a message saying so.
      await loadKeySet(database, current.secret);
      return {
        config: current,
        db: database,
        core: createCore({ config: current, db: database, logger }),
        keys: createKeyService({ db: database, secret: current.secret }),
      };
    },

    async close(): Promise<void> {
      await db?.destroy();
    },
  };
  return context;
}

/** The running process that has the embedded database open, if any (see src/db/data-dir-lock.ts). */
export function embeddedDatabaseInUse(dataDir: string): number | undefined {
  return dataDirOwner(dataDir);
}

function refuseEmbeddedInUse(dataDir: string): void {
  const owner = embeddedDatabaseInUse(dataDir);
  if (owner !== undefined) {
    throw new CliError(
      `The embedded database in ${dataDir} is open in process ${owner} (is Sesame running?). ` +
        'It serves one process at a time: stop the server first, or use PostgreSQL (DATABASE_URL).',
    );
  }
}

/** Dispatches `<group> <subcommand> …` to one handler. */
export function subcommands(group: string, handlers: Record<string, (args: string[], context: CliContext) => Promise<Output>>): Command['run'] {
  const names = Object.keys(handlers);
  return (args, context) => {
    const [name, ...rest] = args;
    if (!name || name.startsWith('-')) throw new UsageError(`Missing subcommand: sesame ${group} ${names.join('|')}.`);
    const handler = Object.hasOwn(handlers, name) ? handlers[name] : undefined;
    if (!handler) throw new UsageError(`Unknown subcommand 'sesame ${group} ${name}' (try ${names.join(', ')}).`);
    return handler(rest, context);
  };
}

/** Aligned `label: value` lines. */
export function fields(rows: Array<[string, string]>, indent = ''): string {
  const width = Math.max(...rows.map(([label]) => label.length)) + 1;
  return rows.map(([label, value]) => `${indent}${`${label}:`.padEnd(width)} ${value}`).join('\n');
}
