import { randomBytes } from 'node:crypto';
import { join, relative } from 'node:path';
import { sesameBundle, startFlags } from './build.ts';
import { createAgent } from './http.ts';
import { createBenchDatabase } from './postgres.ts';
import { clientCredentials, REDIRECT_URI, registerApp, type Credentials, type Target } from './flows.ts';
import { freePort, repoRoot, startServer, type ServerProcess } from './processes.ts';
import { smtpSink } from './smtp-sink.ts';

/** What every Sesame process of one deployment shares. */
export type SesameDeployment = {
  baseUrl: string;
  secret: string;
  m2m: Credentials;
  storage: { databaseUrl: string } | { dataDir: string };
  /** Where sign-in mails go (the bench's SMTP sink). */
  smtpUrl: string;
};

export const newCredentials = (prefix: string): Credentials => ({
  id: `${prefix}-${randomBytes(4).toString('hex')}`,
  secret: randomBytes(32).toString('base64url'),
});

export async function sesameDeployment(storage: SesameDeployment['storage']): Promise<SesameDeployment & { port: number }> {
  const port = await freePort();
  const { url: smtpUrl } = await smtpSink();
  return { port, baseUrl: `http://localhost:${port}`, secret: randomBytes(32).toString('base64url'), m2m: newCredentials('bench-m2m'), storage, smtpUrl };
}

/**
 * One Sesame process with the deployment's env, listening on `port`: as
 * `npm start` runs it (dist/main.mjs under plain node, with the start script's
 * node flags), or with `tsx` from the TypeScript sources (`node --import tsx
 * src/main.ts`, as `npm run dev` does, without them). `bundle` runs another
 * build of Sesame instead of this checkout's (`--compare`, bench/lib/compare.ts).
 */
export async function startSesame(
  name: string,
  deployment: SesameDeployment,
  port: number,
  options: { logDir: string; nodeFlags?: string[]; logLevel?: string; tsx?: boolean; bundle?: string },
): Promise<ServerProcess> {
  // On PostgreSQL, count the SQL each operation sends (a Map increment per query).
  const countQueries = 'databaseUrl' in deployment.storage;
  return startServer({
    name,
    script: options.tsx ? 'src/main.ts' : relative(repoRoot, options.bundle ?? (await sesameBundle())),
    tsx: options.tsx ?? false,
    port,
    readyPath: '/readyz',
    logDir: options.logDir,
    nodeFlags: [...(options.tsx ? [] : startFlags()), ...(options.nodeFlags ?? [])],
    ...(countQueries ? { preload: ['./bench/lib/count-queries.mjs'], queryLog: join(options.logDir, `${name}.queries.jsonl`) } : {}),
    env: {
      NODE_ENV: 'production',
      BASE_URL: deployment.baseUrl,
      SESAME_SECRET: deployment.secret,
      SESAME_BOOTSTRAP_CLIENT_ID: deployment.m2m.id,
      SESAME_BOOTSTRAP_CLIENT_SECRET: deployment.m2m.secret,
      LOG_LEVEL: options.logLevel ?? 'warn',
      // No periodic cleanup: row counts stay what the bench makes them (the 100k-rows comparison needs its rows).
      CLEANUP_INTERVAL_SECONDS: '0',
      // The load comes from one address and one client: limits stay on (their cost is measured) but out of reach.
      // (COUNT has at most 9 digits.)
      RATE_LIMIT_VERIFICATION_PER_IP: '999999999/1m',
      RATE_LIMIT_TOKEN_MINT_PER_CLIENT: '999999999/1m',
      RATE_LIMIT_EMAIL_SEND_PER_IP: '999999999/1m',
      RATE_LIMIT_EMAIL_SEND_PER_EMAIL: '999999999/1m',
      AUTO_BAN_AFTER: 'off',
      SMTP_URL: deployment.smtpUrl,
      ...('databaseUrl' in deployment.storage ? { DATABASE_URL: deployment.storage.databaseUrl } : { DATA_DIR: deployment.storage.dataDir }),
    },
  });
}

/** The bare oidc-provider: in memory, or with `databaseUrl` its state in PostgreSQL (`baseline-pg`, bench/baseline-pg.ts). */
export async function startBaseline(logDir: string, nodeFlags?: string[], databaseUrl?: string) {
  const port = await freePort();
  const baseUrl = `http://localhost:${port}`;
  const m2m = newCredentials('bench-m2m');
  const app = newCredentials('bench-app');
  const name = databaseUrl ? 'baseline-pg' : 'baseline';
  const server = await startServer({
    name,
    script: 'bench/baseline.ts',
    port,
    readyPath: '/healthz',
    logDir,
    nodeFlags,
    ...(databaseUrl ? { preload: ['./bench/lib/count-queries.mjs'], queryLog: join(logDir, `${name}.queries.jsonl`) } : {}),
    env: {
      ...(databaseUrl ? { BENCH_DATABASE_URL: databaseUrl } : {}),
      NODE_ENV: 'production',
      BASE_URL: baseUrl,
      BENCH_M2M_ID: m2m.id,
      BENCH_M2M_SECRET: m2m.secret,
      BENCH_APP_ID: app.id,
      BENCH_APP_SECRET: app.secret,
      BENCH_REDIRECT_URI: REDIRECT_URI,
    },
  });
  return { server, baseUrl, m2m, app };
}

/**
 * A target ready for load: a Management API token from client_credentials
 * and, for Sesame, a registered Traditional app (the baseline has one configured).
 */
export async function makeTarget(options: {
  name: string;
  processes: ServerProcess[];
  baseUrl: string;
  m2m: Credentials;
  app?: Credentials;
  database?: string;
  connections: number;
}): Promise<Target> {
  const target: Target = {
    name: options.name,
    urls: options.processes.map((server) => server.url),
    baseUrl: options.baseUrl,
    m2m: options.m2m,
    app: options.app ?? { id: '', secret: '' },
    redirectUri: REDIRECT_URI,
    agent: createAgent(options.connections),
    adminToken: '',
    processes: options.processes,
    database: options.database,
    next: 0,
  };
  target.adminToken = await clientCredentials(target);
  if (!options.app) target.app = await registerApp(target);
  return target;
}

/**
 * One Sesame process on a PostgreSQL database of its own (created here,
 * dropped by `cleanups` at the end), and a target ready for load on it.
 */
export async function startSesameOnPostgres(
  name: string,
  options: { logDir: string; logLevel?: string; bundle?: string; connections: number; cleanups: Array<() => Promise<void>> },
) {
  const database = await createBenchDatabase();
  options.cleanups.push(database.drop);
  const deployment = await sesameDeployment({ databaseUrl: database.url });
  const server = await startSesame(name, deployment, deployment.port, { logDir: options.logDir, logLevel: options.logLevel, bundle: options.bundle });
  const target = await makeTarget({ name, processes: [server], ...deployment, database: database.name, connections: options.connections });
  return { database, deployment, server, target };
}
