import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { DatabaseUnreachableError } from '../../src/db/index.ts';
import { createSesame } from '../../src/main.ts';
import { freePort, generousLimits } from '../helpers/server.ts';

describe('a start that waits', () => {
  it('says which step it is waiting on, and stops saying so once the start has ended', async () => {
    const lines: Array<{ level: number; msg: string; step?: string; stepSeconds?: number }> = [];
    const logger = pino({ level: 'warn', base: undefined }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    // A PostgreSQL nobody listens on: the start waits for it, then gives up.
    const config = loadConfig({
      NODE_ENV: 'test',
      PORT: '0',
      BASE_URL: 'http://localhost:3999',
      DATABASE_URL: `postgres://postgres@127.0.0.1:${await freePort()}/postgres`,
      SESAME_SECRET: inject('sesameSecret'),
      SESAME_BOOTSTRAP_CLIENT_ID: `watch-m2m-${randomBytes(4).toString('hex')}`,
      SESAME_BOOTSTRAP_CLIENT_SECRET: randomBytes(32).toString('base64url'),
      ...generousLimits,
    });
    await expect(createSesame({ config, logger, databaseWaitMs: 2_000, startWatchMs: 500 })).rejects.toThrow(DatabaseUnreachableError);
    const watched = lines.filter((line) => line.msg.startsWith('still starting'));
    expect(watched.length).toBeGreaterThanOrEqual(2);
    expect(watched[0]).toMatchObject({ level: 40, msg: 'still starting: migrating the database', step: 'migrating the database' });
    expect(watched.at(-1)!.stepSeconds).toBeGreaterThanOrEqual(1);

    const after = lines.length;
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(lines.slice(after).filter((line) => line.msg.startsWith('still starting'))).toEqual([]);
  });
});
