import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import type { Database } from '../../src/db/index.ts';
import { createSesame } from '../../src/main.ts';
import { openTestDatabase, usingPostgres } from '../helpers/db.ts';
import { generousLimits } from '../helpers/server.ts';

/**
 * A start that fails after it opened its database pool and its cache
 * invalidation listener closes both: nothing is left holding connections (or
 * the process's event loop). Connections are told apart by an application_name
 * of their own in DATABASE_URL.
 */
describe.skipIf(!usingPostgres)('a start that fails (PostgreSQL)', () => {
  let admin: Database;
  beforeAll(async () => {
    admin = await openTestDatabase();
  });
  afterAll(async () => {
    await admin?.destroy();
  });

  const connectionsOf = async (applicationName: string) => {
    const { rows } = await admin.raw<{ rows: Array<{ n: number }> }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ?', [
      applicationName,
    ]);
    return rows[0]!.n;
  };
  /** The connections' count once it stops changing to `expected` (a backend ends a moment after its client closes it). */
  const settledConnections = async (applicationName: string, expected: number) => {
    let count = await connectionsOf(applicationName);
    for (let waited = 0; count !== expected && waited < 5_000; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      count = await connectionsOf(applicationName);
    }
    return count;
  };

  /** The database URL with an application_name of its own (it overrides the one the listener gives itself). */
  const urlNamed = (applicationName: string) => {
    const url = new URL(process.env.DATABASE_URL!);
    url.searchParams.set('application_name', applicationName);
    return url.toString();
  };
  /** The pool connects as `<name>-pool`, the invalidation listener as `<name>-listener`. */
  const configNamed = (name: string, clientId: string) =>
    loadConfig({
      NODE_ENV: 'test',
      PORT: '0',
      BASE_URL: 'http://localhost:3999',
      DATABASE_URL: urlNamed(`${name}-pool`),
      DATABASE_LISTEN_URL: urlNamed(`${name}-listener`),
      SESAME_SECRET: inject('sesameSecret'),
      SESAME_BOOTSTRAP_CLIENT_ID: clientId,
      SESAME_BOOTSTRAP_CLIENT_SECRET: randomBytes(32).toString('base64url'),
      LOG_LEVEL: 'silent',
      ...generousLimits,
    });

  it('a started instance holds connections until close(): the control for the test below', async () => {
    const name = `sesame-start-${randomBytes(4).toString('hex')}`;
    const sesame = await createSesame({ config: configNamed(name, `start-m2m-${randomBytes(4).toString('hex')}`), demoClientId: `demo-${randomBytes(4).toString('hex')}` });
    expect(await connectionsOf(`${name}-listener`)).toBe(1);
    expect(await connectionsOf(`${name}-pool`)).toBeGreaterThanOrEqual(1);
    await sesame.close({ drainMs: 0 });
    expect(await settledConnections(`${name}-listener`, 0)).toBe(0);
    expect(await settledConnections(`${name}-pool`, 0)).toBe(0);
  });

  it('closes the database pool and the invalidation listener when a step after them fails', async () => {
    const name = `sesame-failed-${randomBytes(4).toString('hex')}`;
    const clientId = `failed-m2m-${randomBytes(4).toString('hex')}`;
    // The demo app is given the bootstrap client's id: that machine-to-machine app cannot take its
    // redirect URI, so the start fails at the bootstrap, after the migrations, the keys and the listener.
    await expect(createSesame({ config: configNamed(name, clientId), demoClientId: clientId })).rejects.toThrow(/redirect/i);
    expect(await settledConnections(`${name}-listener`, 0)).toBe(0);
    expect(await settledConnections(`${name}-pool`, 0)).toBe(0);
  });
});
