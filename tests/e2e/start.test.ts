import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { databaseKind, usingPostgres } from '../helpers/db.ts';
import { freePort, startTestSesame } from '../helpers/server.ts';

const root = new URL('../..', import.meta.url).pathname;

type Started = { child: ChildProcess; output: () => string; exited: Promise<number | null> };

/**
 * The server from its sources (`npm run dev`: tsx src/main.ts), waiting for the
 * banner; `npm start` runs the same code compiled, tested in build.test.ts.
 */
async function start(env: Record<string, string>): Promise<Started> {
  const child = spawn(join(root, 'node_modules/.bin/tsx'), ['src/main.ts'], {
    cwd: root,
    // Vitest sets BASE_URL=/ in its own environment (Vite's base path): do not inherit it.
    env: { ...process.env, BASE_URL: '', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!output.includes('Sesame is listening') && Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`Sesame exited early (${child.exitCode} ${child.signalCode}):\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (!output.includes('Sesame is listening')) throw new Error(`no banner within 60 s:\n${output}`);
  return { child, output: () => output, exited };
}

async function stop(started: Started): Promise<number | null> {
  started.child.kill('SIGTERM');
  return started.exited;
}

describe(`starting the server from its sources (${databaseKind})`, () => {
  const running: Started[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map(stop));
  });

  it('starts from nothing, prints the issuer, the demo and the M2M credentials once, and restarts cleanly', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sesame-start-'));
    const port = await freePort();
    const clientId = `start-${randomBytes(4).toString('hex')}`;
    const env: Record<string, string> = {
      PORT: String(port),
      DATA_DIR: dataDir,
      SESAME_BOOTSTRAP_CLIENT_ID: clientId,
      DATABASE_URL: process.env.DATABASE_URL ?? '',
      // Instances sharing a PostgreSQL database share the secret; the embedded default generates one.
      SESAME_SECRET: usingPostgres ? inject('sesameSecret') : '',
    };
    const first = await start(env);
    running.push(first);
    const banner = first.output();
    expect(banner).toContain(`Issuer:        http://localhost:${port}/oidc`);
    expect(banner).toContain(`Demo:          http://localhost:${port}/demo`);
    expect(banner).toContain(`M2M client id: ${clientId}`);
    const secret = /M2M secret:\s+(\S+)/.exec(banner)?.[1];
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    if (!usingPostgres) {
      const secretFile = join(dataDir, 'sesame-secret');
      expect(readFileSync(secretFile, 'utf8').trim().length).toBeGreaterThanOrEqual(32);
      expect(statSync(secretFile).mode & 0o777).toBe(0o600);
      expect(existsSync(join(dataDir, 'pgdata'))).toBe(true);
    }

    // The printed credentials work.
    const discovery = await (await fetch(`http://localhost:${port}/oidc/.well-known/openid-configuration`)).json();
    expect(discovery.issuer).toBe(`http://localhost:${port}/oidc`);
    const token = await fetch(`http://localhost:${port}/oidc/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: `http://localhost:${port}/api`, scope: 'all' }),
    });
    expect(token.status).toBe(200);
    expect((await (await fetch(`http://localhost:${port}/demo`)).text())).toContain('Try Sesame');

    if (!usingPostgres) {
      // A second server on the same embedded database is refused while the first runs.
      const second = spawn(join(root, 'node_modules/.bin/tsx'), ['src/main.ts'], {
        cwd: root,
        env: { ...process.env, BASE_URL: '', LOG_LEVEL: 'warn', ...env, PORT: String(await freePort()) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      second.stdout.on('data', (chunk) => (output += chunk));
      second.stderr.on('data', (chunk) => (output += chunk));
      expect(await new Promise((resolve) => second.once('exit', resolve))).toBe(1);
      expect(output).toContain(`is in use by process`);
    }

    expect(await stop(running.pop()!)).toBe(0);

    // Second start on the same data: same client, no secret printed again.
    const second = await start(env);
    running.push(second);
    expect(second.output()).toContain(`M2M client id: ${clientId}`);
    expect(second.output()).not.toContain('M2M secret');
    expect(second.output()).not.toContain(secret!);
  });

  it('refuses to start with a bad variable and names it', async () => {
    const child = spawn(join(root, 'node_modules/.bin/tsx'), ['src/main.ts'], {
      cwd: root,
      env: { ...process.env, PORT: 'eighty', BASE_URL: 'ftp://nope' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toContain('PORT');
    expect(stderr).toContain('BASE_URL');
  });

  it('serves no demo in production', async () => {
    const t = await startTestSesame({ NODE_ENV: 'production' });
    try {
      expect((await fetch(`${t.baseUrl}/demo`)).status).toBe(404);
      expect(await (await fetch(`${t.baseUrl}/`)).text()).not.toContain('/demo');
    } finally {
      await t.close();
    }
  });
});
