import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../../src/cli/index.ts';
import { databaseKind, usingPostgres } from '../helpers/db.ts';

/** The CLI in-process, on a fresh embedded database in its own DATA_DIR or on the test PostgreSQL database. */
describe(`sesame bans (${databaseKind})`, () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sesame-bans-cli-'));
  const env = usingPostgres
    ? { DATABASE_URL: process.env.DATABASE_URL!, SESAME_SECRET: inject('sesameSecret') }
    : { DATA_DIR: dataDir, SESAME_SECRET: randomBytes(32).toString('base64url'), DATABASE_URL: '' };
  const cli = (...args: string[]) => runCli(args, { env, readStdin: async () => '' });
  // An address from the benchmarking range no other test uses (the PostgreSQL database is shared).
  const ip = `198.18.${randomInt(256)}.${randomInt(1, 255)}`;

  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('adds, lists and removes a ban, and refuses what is not one address', async () => {
    // Usage errors are found before the database is opened.
    expect(await cli('bans', 'add', '10.0.0.0/8', '--reason', 'range')).toMatchObject({ exitCode: 2 });
    expect(await cli('bans', 'add', ip)).toMatchObject({ exitCode: 2 });
    expect(await cli('bans', 'add', ip, '--reason', 'x', '--expires-in', '5')).toMatchObject({ exitCode: 2 });

    const added = await cli('bans', 'add', `::ffff:${ip}`, '--reason', 'Proxy misconfigured', '--expires-in', '3600', '--json');
    expect(added.exitCode).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({ ip, reason: 'Proxy misconfigured', source: 'manual', createdBy: 'cli' });

    const human = await cli('bans', 'list');
    expect(human.stdout).toMatch(new RegExp(`^${ip.replaceAll('.', '\\.')} +manual +until \\S+ +Proxy misconfigured$`, 'm'));

    const removed = await cli('bans', 'remove', ip);
    expect(removed).toMatchObject({ exitCode: 0 });
    expect(removed.stdout).toContain(`Lifted the ban of ${ip}`);
    expect(JSON.parse((await cli('bans', 'list', '--json')).stdout)).not.toContainEqual(expect.objectContaining({ ip }));
    expect(await cli('bans', 'remove', ip)).toMatchObject({ exitCode: 1 });
  });
});
