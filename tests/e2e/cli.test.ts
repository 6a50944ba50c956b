import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migrations } from '../../migrations/index.ts';
import { createDatabase, type Database } from '../../src/db/index.ts';
import { databaseKind, usingPostgres } from '../helpers/db.ts';
import { freePort, startTestSesame } from '../helpers/server.ts';
import { startSmtpCapture } from '../helpers/smtp.ts';

const root = new URL('../..', import.meta.url).pathname;

type Run = { code: number | null; stdout: string; stderr: string; json: () => any };

/** `sesame …` as the package's bin runs it, in a child process, with `stdin` piped in. */
function sesame(args: string[], env: Record<string, string>, stdin = ''): Promise<Run> {
  const child = spawn(process.execPath, [join(root, 'bin/sesame.js'), ...args], {
    cwd: root,
    // Vitest sets BASE_URL=/ in its own environment: never inherit it (or any other Sesame variable).
    env: {
      ...process.env,
      BASE_URL: '',
      DATABASE_URL: '',
      SMTP_URL: '',
      SESAME_BOOTSTRAP_CLIENT_ID: '',
      SESAME_BOOTSTRAP_CLIENT_SECRET: '',
      ...env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  child.stdin.end(stdin);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr, json: () => JSON.parse(stdout) }));
  });
}

/** A setting of the PostgreSQL server the tests run on (DATABASE_URL). */
async function postgresSetting(name: string): Promise<string> {
  const admin = knexFactory({ client: 'pg', connection: process.env.DATABASE_URL, pool: { min: 0, max: 1 } });
  try {
    const { rows } = (await admin.raw('SELECT current_setting(?) AS value', [name])) as { rows: Array<{ value: string }> };
    return rows[0]!.value;
  } finally {
    await admin.destroy();
  }
}

/**
 * An empty database for the CLI: a temp DATA_DIR for the embedded database, or
 * a scratch PostgreSQL database created here and dropped afterwards.
 */
async function freshDatabase(): Promise<{ env: Record<string, string>; open: () => Database; drop: () => Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sesame-cli-'));
  const base = { DATA_DIR: dataDir, SESAME_SECRET: inject('sesameSecret') };
  const url = process.env.DATABASE_URL;
  const removeDataDir = () => rmSync(dataDir, { recursive: true, force: true });
  if (!url) {
    return { env: base, open: () => createDatabase({ kind: 'embedded', dataDir }), drop: async () => removeDataDir() };
  }
  const name = `sesame_cli_${randomBytes(6).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  const scratch = new URL(url);
  scratch.pathname = `/${name}`;
  return {
    env: { ...base, DATABASE_URL: scratch.toString() },
    open: () => createDatabase({ kind: 'postgres', url: scratch.toString() }),
    drop: async () => {
      await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.destroy();
      removeDataDir();
    },
  };
}

// One database serves the whole file: the tests run in order and build on each other.
describe(`sesame CLI (${databaseKind})`, { timeout: 180_000 }, () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let env: Record<string, string>;

  beforeAll(async () => {
    database = await freshDatabase();
    // Nothing listens at BASE_URL unless a test starts a server.
    env = { ...database.env, BASE_URL: `http://127.0.0.1:${await freePort()}` };
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('prints usage with --help and exits 2 on a wrong command line, before touching the database', async () => {
    const runs = await Promise.all([
      sesame(['--help'], env),
      sesame(['users', '--help'], env),
      sesame([], env),
      sesame(['frobnicate'], env),
      sesame(['users', 'create'], env),
      sesame(['users', 'create', '--email', 'ada@example.com', '--password', 'hunter2hunter2'], env),
      sesame(['tokens', 'mint', '--email', 'ada@example.com', '--expires-in', 'soon'], env),
      sesame(['apps', 'create', '--name', 'X', '--type', 'Weird'], env),
      sesame(['migrate', 'sideways', '--json'], env),
    ]);
    const [help, usersHelp, none, unknown, missingEmail, passwordArgument, badExpiry, badType, badSubcommand] = runs;

    expect(help!.code).toBe(0);
    for (const command of ['migrate', 'apps', 'users', 'tokens', 'keys', 'bootstrap', 'doctor']) expect(help!.stdout).toContain(`  ${command} `);
    expect(usersHelp!.code).toBe(0);
    expect(usersHelp!.stdout).toContain('sesame users create --email EMAIL [--name NAME] [--password-stdin]');

    expect(none!.code).toBe(2);
    expect(none!.stderr).toContain('Usage: sesame <command>');
    expect(unknown!.stderr).toBe("sesame: Unknown command 'frobnicate'. See 'sesame --help'.\n");
    expect(missingEmail!.stderr).toBe("sesame: Missing --email. See 'sesame users --help'.\n");
    // A password is never an argument (shell history, ps): there is no such option.
    expect(passwordArgument!.stderr).toContain("Unknown option '--password'");
    expect(passwordArgument!.stderr).not.toContain('hunter2hunter2');
    expect(badExpiry!.stderr).toContain("--expires-in must be a whole number, not 'soon'");
    expect(badType!.stderr).toContain('--type must be one of Traditional, SPA, Native, MachineToMachine');
    expect(badSubcommand!.json()).toEqual({ error: { code: 'USAGE', message: expect.stringContaining("Unknown subcommand 'sesame migrate sideways'") } });
    for (const run of runs.slice(3)) {
      expect(run.code).toBe(2);
      // One clear line, no stack trace.
      expect(run.stderr).toMatch(/^sesame: [^\n]+\n$/);
    }
    if (!usingPostgres) expect(existsSync(join(env.DATA_DIR!, 'pgdata'))).toBe(false);
  });

  it('migrate: status lists migrations by name, up applies them, down undoes only the newest', async () => {
    const names = migrations.map((migration) => migration.name);
    const fresh = await sesame(['migrate', 'status', '--json'], env);
    expect(fresh.code).toBe(0);
    expect(fresh.json()).toEqual({ applied: [], pending: names, unknown: [] });

    const up = await sesame(['migrate', 'up'], env);
    expect(up.code).toBe(0);
    expect(up.stdout).toBe(`Applied ${names.length} migrations:\n${names.map((name) => `  ${name}\n`).join('')}`);

    const down = await sesame(['migrate', 'down', '--json'], env);
    expect(down.code).toBe(0);
    expect(down.json()).toEqual({ rolledBack: names.at(-1) });

    const status = await sesame(['migrate', 'status'], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`applied  ${names[0]}\n`);
    expect(status.stdout).toContain(`pending  ${names.at(-1)}\n`);
    expect(status.stdout).toContain(`${names.length - 1} applied, 1 pending.`);
  });

  it('apps create prints the id and the secret once; an invalid redirect URI exits 1', async () => {
    // Also migrates back to latest, as every command but migrate and doctor does.
    const web = await sesame(
      ['apps', 'create', '--name', 'Acme web', '--type', 'Traditional', '--redirect-uri', 'https://acme.example/callback', '--redirect-uri', 'http://localhost:8080/cb'],
      env,
    );
    expect(web.code).toBe(0);
    expect(web.stdout).toMatch(/^Created Traditional application "Acme web"\.\n {2}id: +\S+\n {2}secret: +[A-Za-z0-9_-]{43}\n/);
    expect(web.stdout).toContain('https://acme.example/callback http://localhost:8080/cb');

    const m2m = await sesame(['apps', 'create', '--name', 'Backend', '--type', 'machinetomachine', '--management-api-access', '--json'], env);
    expect(m2m.code).toBe(0);
    expect(m2m.json()).toMatchObject({ name: 'Backend', type: 'MachineToMachine', managementApiAccess: true, secret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });

    const bad = await sesame(['apps', 'create', '--name', 'Bad', '--type', 'SPA', '--redirect-uri', 'http://evil.example/cb'], env);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toBe('sesame: Invalid application: oidcClientMetadata.redirectUris[0] must use https (http is allowed only for localhost).\n');
  });

  it('users: create with a password from stdin (never echoed), suspend by email, unsuspend by id', async () => {
    const password = `pw-${randomBytes(12).toString('hex')}`;
    const created = await sesame(['users', 'create', '--email', 'Ada@Example.com', '--name', 'Ada', '--password-stdin', '--json'], env, `${password}\n`);
    expect(created.code).toBe(0);
    const user = created.json();
    expect(user).toMatchObject({ primaryEmail: 'ada@example.com', name: 'Ada', hasPassword: true, isSuspended: false, emailVerified: false });
    expect(created.stdout + created.stderr).not.toContain(password);

    const suspended = await sesame(['users', 'suspend', 'ada@example.com'], env);
    expect(suspended.code).toBe(0);
    expect(suspended.stdout).toBe(`Suspended ada@example.com (${user.id}): they cannot sign in, and their sessions were ended.\n`);

    const unsuspended = await sesame(['users', 'unsuspend', user.id, '--json'], env);
    expect(unsuspended.code).toBe(0);
    expect(unsuspended.json()).toMatchObject({ id: user.id, isSuspended: false, hasPassword: true });

    const unknown = await sesame(['users', 'suspend', 'nobody@example.com'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('sesame: No user has the email nobody@example.com.\n');

    const short = await sesame(['users', 'create', '--email', 'bob@example.com', '--password-stdin'], env, 'short\n');
    expect(short.code).toBe(1);
    expect(short.stderr).toBe('sesame: --password-stdin: the password must be 8 to 256 characters.\n');
  });

  it('tokens mint prints the id, the token and the expiry; unknown organizations exit 1 and are named', async () => {
    const human = await sesame(['tokens', 'mint', '--email', 'ada@example.com', '--expires-in', '900'], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^id: +\S+\ntoken: +[A-Za-z0-9_-]{43}\nexpires: +\S+Z \(in 900 s\)\n$/);

    const before = Date.now();
    const json = await sesame(['tokens', 'mint', '--email', 'Ada@example.com', '--json'], env);
    expect(json.code).toBe(0);
    const minted = json.json();
    expect(minted).toMatchObject({ email: 'ada@example.com', token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), context: {} });
    // The default lifetime is 10 minutes.
    expect(Date.parse(minted.expiresAt) - before).toBeGreaterThan(590_000);
    expect(Date.parse(minted.expiresAt) - before).toBeLessThan(610_000 + 60_000);

    const unknownOrg = await sesame(['tokens', 'mint', '--email', 'ada@example.com', '--org', 'no-such-org', '--json'], env);
    expect(unknownOrg.code).toBe(1);
    expect(unknownOrg.stderr).toBe('sesame: Unknown organization ids: no-such-org.\n');
    expect(unknownOrg.json()).toEqual({
      error: { code: 'INVALID_INPUT', message: 'Unknown organization ids: no-such-org.', unknownOrganizationIds: ['no-such-org'] },
    });
  });

  it('keys rotate adds signing keys that are current from now on, a cookie key with --cookie, and refuses another SESAME_SECRET', async () => {
    const rotated = await sesame(['keys', 'rotate', '--json'], env);
    expect(rotated.code).toBe(0);
    const { keys } = rotated.json();
    expect(rotated.json().rotated).toBe('signing');

    const cookie = await sesame(['keys', 'rotate', '--cookie'], env);
    expect(cookie.code).toBe(0);
    expect(cookie.stdout).toContain('Added a cookie key');

    const list = await sesame(['keys', 'list', '--json'], env);
    expect(list.code).toBe(0);
    const listed = list.json() as Array<{ kid: string; alg: string; current: boolean }>;
    expect(listed).toHaveLength(4);
    expect(listed).toEqual(keys);
    const current = listed.filter((key) => key.current);
    expect(current.map((key) => key.alg).sort()).toEqual(['ES256', 'RS256']);

    // Keys sealed under another SESAME_SECRET could not be opened by the servers: refuse.
    const otherSecret = await sesame(['keys', 'rotate'], { ...env, SESAME_SECRET: randomBytes(32).toString('base64url') });
    expect(otherSecret.code).toBe(1);
    expect(otherSecret.stderr).toMatch(/^sesame: The keys in the database were sealed with another SESAME_SECRET\. [^\n]+\n$/);
  });

  it('bootstrap prints the client secret the first time only, and a new one with --rotate-secret', async () => {
    const first = await sesame(['bootstrap'], env);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/client id: +sesame-bootstrap\n/);
    const secret = /secret: +([A-Za-z0-9_-]{43})\n/.exec(first.stdout)?.[1];
    expect(secret).toBeDefined();

    const second = await sesame(['bootstrap', '--json'], env);
    expect(second.code).toBe(0);
    expect(second.json()).toMatchObject({ id: 'sesame-bootstrap', secret: null });
    expect(second.stdout).not.toContain(secret!);

    const rotated = await sesame(['bootstrap', '--rotate-secret', '--json'], env);
    expect(rotated.code).toBe(0);
    expect(rotated.json().secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(rotated.json().secret).not.toBe(secret);

    // A secret chosen by env comes back at every start: rotating it here would not last.
    const fixed = await sesame(['bootstrap', '--rotate-secret'], { ...env, SESAME_BOOTSTRAP_CLIENT_SECRET: randomBytes(32).toString('base64url') });
    expect(fixed.code).toBe(1);
    expect(fixed.stderr).toContain('SESAME_BOOTSTRAP_CLIENT_SECRET is set');
  });

  it('doctor passes on a healthy setup; a bad DATABASE_URL fails it and a missing server is only a warning', async () => {
    const smtp = await startSmtpCapture();
    const server = await startTestSesame();
    try {
      const healthy = await sesame(['doctor'], { ...env, SMTP_URL: smtp.url, BASE_URL: server.baseUrl });
      expect(healthy.code).toBe(0);
      expect(healthy.stdout).toMatch(/^✓ config +The configuration is valid/m);
      expect(healthy.stdout).toMatch(/^✓ database +/m);
      expect(healthy.stdout).toMatch(new RegExp(`^✓ migrations +All ${migrations.length} migrations are applied\\.$`, 'm'));
      expect(healthy.stdout).toMatch(/^✓ keys +4 signing and 2 cookie keys open with this SESAME_SECRET\.$/m);
      expect(healthy.stdout).toMatch(/^✓ smtp +The SMTP server at 127\.0\.0\.1:\d+ answers\.$/m);
      expect(healthy.stdout).toContain(`✓ server      A server answers at ${server.baseUrl} with the issuer ${server.issuer}.`);
      // Vacuuming: the embedded database's cleanup job, or PostgreSQL's autovacuum (which this server may have off).
      const autovacuumOff = usingPostgres && (await postgresSetting('autovacuum')) === 'off';
      if (!usingPostgres) expect(healthy.stdout).toMatch(/^✓ vacuum +The embedded database has no autovacuum: the cleanup job vacuums it every 300 s\.$/m);
      else if (autovacuumOff) expect(healthy.stdout).toMatch(/^! vacuum +PostgreSQL's autovacuum is off: deleted and rewritten rows are never reclaimed/m);
      else expect(healthy.stdout).toMatch(/^✓ vacuum +PostgreSQL's autovacuum is on\.$/m);
      expect(healthy.stdout).toMatch(autovacuumOff ? /\nNo problems \(1 warning\)\.\n$/ : /\nNo problems\.\n$/);
      expect(healthy.code).toBe(0);
    } finally {
      await server.close();
      await smtp.close();
    }

    const broken = await sesame(['doctor', '--json'], { ...env, DATABASE_URL: `postgres://sesame:wrong@127.0.0.1:${await freePort()}/nothing` });
    expect(broken.code).toBe(1);
    const { ok, checks } = broken.json();
    expect(ok).toBe(false);
    expect(checks.find((check: { name: string }) => check.name === 'database')).toMatchObject({
      status: 'fail',
      message: expect.stringContaining('could not be reached: connect ECONNREFUSED'),
    });
    expect(checks.find((check: { name: string }) => check.name === 'server')).toMatchObject({
      status: 'warn',
      message: expect.stringContaining('No server answered at'),
    });
    expect(broken.stdout).not.toContain('wrong');
    expect(broken.stderr).toBe('');
  });

  it.skipIf(usingPostgres)('doctor warns when the cleanup that vacuums the embedded database is off', async () => {
    const off = await sesame(['doctor', '--json'], { ...env, CLEANUP_INTERVAL_SECONDS: '0' });
    expect(off.code).toBe(0);
    expect(off.json().checks.find((check: { name: string }) => check.name === 'vacuum')).toEqual({
      name: 'vacuum',
      status: 'warn',
      message: 'The embedded database has no autovacuum and CLEANUP_INTERVAL_SECONDS=0 turns off the cleanup that vacuums it: run `sesame cleanup` regularly.',
    });
  });

  it.skipIf(usingPostgres)('refuses the embedded database while another process has it open', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sesame-cli-busy-'));
    // The lock a running server holds: this test process stands in for it (it is alive).
    writeFileSync(join(dataDir, 'sesame.lock'), `${process.pid}\n`);
    const busyEnv = { ...env, DATA_DIR: dataDir };
    const [keys, doctor] = await Promise.all([sesame(['keys', 'list'], busyEnv), sesame(['doctor'], busyEnv)]);
    expect(keys.code).toBe(1);
    expect(keys.stderr).toContain(`is open in process ${process.pid} (is Sesame running?)`);
    expect(doctor.code).toBe(0);
    expect(doctor.stdout).toMatch(/^! database +The embedded database in .* is open in another process/m);

    // A lock left by a process that no longer runs (a crash) does not block.
    writeFileSync(join(dataDir, 'sesame.lock'), '2147483646\n');
    const after = await sesame(['keys', 'list', '--json'], busyEnv);
    rmSync(dataDir, { recursive: true, force: true });
    expect(after.code).toBe(0);
  });

  it.runIf(usingPostgres)('keys rotate reaches a running server without a restart', async () => {
    const db = database.open();
    const server = await startTestSesame({}, { db, keyPollMs: 100 });
    try {
      const jwksKids = async () =>
        ((await (await fetch(`${server.listenUrl}/oidc/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((key) => key.kid).sort();
      const before = await jwksKids();
      const rotated = await sesame(['keys', 'rotate', '--json'], env);
      expect(rotated.code).toBe(0);
      const expected = (rotated.json().keys as Array<{ kid: string }>).map((key) => key.kid).sort();
      expect(expected).toHaveLength(before.length + 2);
      await expect.poll(jwksKids, { timeout: 5_000, interval: 100 }).toEqual(expected);
    } finally {
      await server.close();
      await db.destroy();
    }
  });
});
