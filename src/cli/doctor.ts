import nodemailer from 'nodemailer';
import { ConfigError, type Config } from '../config.ts';
import { isEmbedded, type Database } from '../db/index.ts';
import { loadKeySet } from '../oidc/keys.ts';
import { parseOptions } from './args.ts';
import { embeddedDatabaseInUse, type CliContext, type Command } from './context.ts';
import { migrationStatus } from './migrate.ts';

/** `fail` is a hard failure (exit 1); `warn` is worth knowing but Sesame can run. */
type Check = { name: string; status: 'ok' | 'warn' | 'fail'; message: string };

const ok = (name: string, message: string): Check => ({ name, status: 'ok', message });
const warn = (name: string, message: string): Check => ({ name, status: 'warn', message });
const fail = (name: string, message: string): Check => ({ name, status: 'fail', message });

const DATABASE_TIMEOUT_MS = 10_000;
const SMTP_TIMEOUT_MS = 5_000;
const SERVER_TIMEOUT_MS = 3_000;

/** host:port and path of a URL, without the credentials it may carry. */
function withoutCredentials(value: string): string {
  const url = new URL(value);
  return `${url.host}${url.pathname === '/' ? '' : url.pathname}`;
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms).unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function databaseChecks(context: CliContext, config: Config): Promise<Check[]> {
  const where = config.databaseUrl ? `PostgreSQL at ${withoutCredentials(config.databaseUrl)}` : `The embedded database in ${config.dataDir}/pgdata`;
  const inUse = config.databaseUrl ? undefined : embeddedDatabaseInUse(config.dataDir);
  if (inUse) return [warn('database', `${where} is open in another process (a running Sesame?): database checks skipped.`)];
  let db;
  try {
    db = await withTimeout(context.database(), DATABASE_TIMEOUT_MS, `no answer within ${DATABASE_TIMEOUT_MS / 1000} s`);
  } catch (error) {
    const reason = error instanceof Error && error.cause instanceof Error ? error.cause : (error as Error);
    return [fail('database', `${where} could not be reached: ${reason.message}`)];
  }
  const checks = [ok('database', `${where} answers.`)];
  const status = await migrationStatus(db);
  if (status.unknown.length > 0) {
    checks.push(fail('migrations', `Applied migrations unknown to this version: ${status.unknown.join(', ')} (migrated by a newer Sesame?).`));
    return checks;
  }
  if (status.pending.length > 0) {
    checks.push(
      warn('migrations', `${status.pending.length} pending (${status.pending.join(', ')}): the server applies them at start, or run \`sesame migrate up\`.`),
    );
    return checks;
  }
  checks.push(ok('migrations', `All ${status.applied.length} migrations are applied.`));
  checks.push(await vacuumCheck(db, config));
  try {
    const keySet = await loadKeySet(db, config.secret);
    checks.push(
      keySet.signing.length === 0
        ? warn('keys', 'No keys yet: the server creates them at first start.')
        : ok('keys', `${keySet.signing.length} signing and ${keySet.cookie.length} cookie keys open with this SESAME_SECRET.`),
    );
  } catch (error) {
    checks.push(fail('keys', (error as Error).message));
  }
  return checks;
}

/**
 * Whether deleted and rewritten rows get vacuumed: without it their space is
 * never reused and every index keeps their entries, so lookups slow down with
 * the history. PostgreSQL's autovacuum does it (it can be turned off); the
 * embedded database has none, and the cleanup job vacuums it instead.
 */
async function vacuumCheck(db: Database, config: Config): Promise<Check> {
  if (isEmbedded(db)) {
    return config.cleanup.intervalSeconds > 0
      ? ok('vacuum', `The embedded database has no autovacuum: the cleanup job vacuums it every ${config.cleanup.intervalSeconds} s.`)
      : warn('vacuum', 'The embedded database has no autovacuum and CLEANUP_INTERVAL_SECONDS=0 turns off the cleanup that vacuums it: run `sesame cleanup` regularly.');
  }
  const { rows } = (await db.raw(`SELECT current_setting('autovacuum') AS autovacuum`)) as { rows: Array<{ autovacuum: string }> };
  return rows[0]?.autovacuum === 'on'
    ? ok('vacuum', 'PostgreSQL\'s autovacuum is on.')
    : warn('vacuum', 'PostgreSQL\'s autovacuum is off: deleted and rewritten rows are never reclaimed and lookups slow down as history grows. Turn it on, or run VACUUM (vacuumdb) regularly.');
}

async function smtpCheck(config: Config): Promise<Check> {
  if (!config.smtpUrl) {
    return config.production
      ? warn('smtp', 'SMTP_URL is not set: Sesame cannot send mail (invitations by email fail).')
      : ok('smtp', 'SMTP_URL is not set: mail is kept in the dev outbox at /dev/outbox.');
  }
  const where = withoutCredentials(config.smtpUrl);
  const transport = nodemailer.createTransport({
    url: config.smtpUrl,
    connectionTimeout: SMTP_TIMEOUT_MS,
    greetingTimeout: SMTP_TIMEOUT_MS,
    socketTimeout: SMTP_TIMEOUT_MS,
  });
  try {
    await transport.verify();
    return ok('smtp', `The SMTP server at ${where} answers.`);
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    return fail('smtp', `The SMTP server at ${where} failed: ${code ? `${code} ` : ''}${message}`);
  } finally {
    transport.close();
  }
}

/** A server that is not running is a warning: the CLI works without one. */
async function serverCheck(config: Config): Promise<Check> {
  const url = `${config.issuer}/.well-known/openid-configuration`;
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(SERVER_TIMEOUT_MS) });
  } catch {
    return warn('server', `No server answered at ${url} (not running?).`);
  }
  const body = (await response.json().catch(() => undefined)) as { issuer?: unknown } | undefined;
  if (!response.ok || typeof body?.issuer !== 'string') {
    return warn('server', `Something answered at ${url} (HTTP ${response.status}), but not with an OpenID configuration.`);
  }
  if (body.issuer !== config.issuer) {
    return warn('server', `The server at BASE_URL names the issuer ${body.issuer}, but this configuration expects ${config.issuer}.`);
  }
  return ok('server', `A server answers at ${config.baseUrl} with the issuer ${body.issuer}.`);
}

const marks = { ok: '✓', warn: '!', fail: '✗' } as const;

function report(checks: Check[]) {
  const width = Math.max(...checks.map((check) => check.name.length));
  const failed = checks.filter((check) => check.status === 'fail').length;
  const warnings = checks.filter((check) => check.status === 'warn').length;
  const lines = checks.map((check) => `${marks[check.status]} ${check.name.padEnd(width)}  ${check.message}`);
  const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`;
  const summary = failed > 0 ? `${plural(failed, 'check')} failed.` : `No problems${warnings > 0 ? ` (${plural(warnings, 'warning')})` : ''}.`;
  return { human: [...lines, '', summary].join('\n'), json: { ok: failed === 0, checks }, exitCode: failed > 0 ? (1 as const) : (0 as const) };
}

const usage = `Usage: sesame doctor [--json]

Checks, in order:
  config       the environment parses (as the server reads it)
  database     the database answers (DATABASE_URL, or the embedded one in DATA_DIR)
  migrations   none pending, none unknown to this version
  vacuum       dead rows get reclaimed: PostgreSQL's autovacuum is on, or, on the
               embedded database, the cleanup job (which vacuums it) is not off
  keys         the signing and cookie keys open with this SESAME_SECRET
  smtp         the SMTP server answers (when SMTP_URL is set)
  server       a Sesame answers at BASE_URL, with the expected issuer

✓ passed, ! warning, ✗ failed. Exits 1 when any check failed. A server that is
not running is a warning.`;

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'Check configuration, database, SMTP and BASE_URL',
  usage,
  async run(args, context) {
    parseOptions(args, {});
    let config: Config;
    try {
      config = context.config();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return report([fail('config', `Invalid configuration: ${error.issues.join('; ')}`)]);
    }
    const checks = [ok('config', `The configuration is valid (issuer ${config.issuer}).`)];
    checks.push(...(await databaseChecks(context, config)));
    checks.push(await smtpCheck(config));
    checks.push(await serverCheck(config));
    return report(checks);
  },
};
