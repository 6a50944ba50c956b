import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, DatabaseUnreachableError, migrateWhenReachable } from '../../src/db/index.ts';
import { createLogger } from '../../src/logger.ts';
import { CookieClient, formAction } from '../helpers/browser-client.ts';
import { uniqueEmail } from '../helpers/db.ts';
import { freePort } from '../helpers/server.ts';

const root = new URL('../..', import.meta.url).pathname;
const REDIRECT_URI = 'http://127.0.0.1:5999/callback';

/** The PostgreSQL server binaries (Debian keeps them out of PATH). */
function findPostgresBin(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  const found = versions.map((version) => join(base, version, 'bin')).find((bin) => existsSync(join(bin, 'initdb')));
  if (!found) {
    throw new Error(
      'The resilience tests run their own PostgreSQL cluster and need initdb and pg_ctl under /usr/lib/postgresql/*/bin ' +
        '(Debian: apt-get install postgresql). They are not installed.',
    );
  }
  return found;
}

/**
 * A throwaway PostgreSQL cluster in a temp dir, on a random loopback port,
 * that the test can stop and start. initdb refuses root: run as `postgres`.
 */
function createCluster() {
  const bin = findPostgresBin();
  const dir = mkdtempSync(join(tmpdir(), 'sesame-resilience-pg-'));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  const run = (tool: string, args: string[]) => {
    const [command, commandArgs] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
    return execFileSync(command, commandArgs, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  };
  const data = join(dir, 'data');
  let port = 0;
  return {
    get url() {
      return `postgres://postgres@127.0.0.1:${port}/postgres`;
    },
    async init() {
      port = await freePort();
      run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync']);
    },
    start() {
      const options = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off`;
      run('pg_ctl', ['-D', data, '-l', join(dir, 'postgres.log'), '-o', options, '-w', '-t', '30', 'start']);
    },
    stop() {
      run('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
    },
    remove() {
      try {
        this.stop();
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

type Running = { child: ChildProcess; output: () => string; exited: Promise<number | null> };

async function until(condition: () => boolean | Promise<boolean>, ms: number, what: string, output?: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${output ? `:\n${output()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('resilience against a PostgreSQL that goes away (own cluster)', () => {
  const cluster = createCluster();
  const m2m = { id: `resilience-${randomBytes(4).toString('hex')}`, secret: randomBytes(32).toString('base64url') };
  let env: Record<string, string>;
  let baseUrl: string;
  const running: Running[] = [];

  /**
   * The real server from its sources, as `npm run dev` runs it (tsx
   * src/main.ts), but in one process: the tsx binary runs Node as a child,
   * and a SIGKILL to tsx would leave that child serving. (The compiled
   * bundle `npm start` runs is tested in build.test.ts.)
   */
  function startSesame(): Running {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const started = { child, output: () => output, exited };
    running.push(started);
    return started;
  }

  async function listening(sesame: Running): Promise<void> {
    await until(
      () => {
        if (sesame.child.exitCode !== null) throw new Error(`Sesame exited (${sesame.child.exitCode}):\n${sesame.output()}`);
        return sesame.output().includes('Sesame is listening');
      },
      30_000,
      'the banner',
      sesame.output,
    );
  }

  async function managementToken(): Promise<string> {
    const config = await oidc.discovery(new URL(`${baseUrl}/oidc`), m2m.id, m2m.secret, undefined, { execute: [oidc.allowInsecureRequests] });
    return (await oidc.clientCredentialsGrant(config, { resource: `${baseUrl}/api`, scope: 'all' })).access_token;
  }

  beforeAll(async () => {
    await cluster.init();
    const port = await freePort();
    baseUrl = `http://localhost:${port}`;
    env = {
      // Vitest sets BASE_URL=/ in its own environment: do not inherit it.
      BASE_URL: '',
      PORT: String(port),
      DATABASE_URL: cluster.url,
      DATA_DIR: mkdtempSync(join(tmpdir(), 'sesame-resilience-')),
      SESAME_SECRET: randomBytes(32).toString('base64url'),
      SESAME_BOOTSTRAP_CLIENT_ID: m2m.id,
      SESAME_BOOTSTRAP_CLIENT_SECRET: m2m.secret,
      LOG_LEVEL: 'warn',
    };
  });
  afterAll(async () => {
    for (const { child, exited } of running) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    cluster.remove();
  });

  it('waits for a database that is not up yet, logging each retry, then serves', async () => {
    const sesame = startSesame();
    await until(() => (sesame.output().match(/database not reachable, retrying in/g) ?? []).length >= 2, 15_000, 'two retry lines', sesame.output);
    expect(sesame.output()).toContain('"msg":"database not reachable, retrying in 0.5s"');
    expect(sesame.output()).toContain('"msg":"database not reachable, retrying in 1s"');
    expect(sesame.child.exitCode).toBeNull();

    cluster.start();
    await listening(sesame);
    const ready = await fetch(`${baseUrl}/readyz`);
    expect(ready.status).toBe(200);
  });

  it('gives up waiting at the deadline, and does not wait for a database that answers with an error', async () => {
    const quiet = createLogger('silent');
    const unreachable = createDatabase({ kind: 'postgres', url: `postgres://postgres@127.0.0.1:${await freePort()}/postgres`, logger: quiet });
    const retries: number[] = [];
    const started = Date.now();
    try {
      await expect(
        migrateWhenReachable(unreachable, { deadlineMs: 1200, onRetry: (_error, delayMs) => retries.push(delayMs) }),
      ).rejects.toThrow(DatabaseUnreachableError);
    } finally {
      await unreachable.destroy();
    }
    expect(retries[0]).toBe(500);
    expect(retries.length).toBeGreaterThanOrEqual(2);
    expect(Date.now() - started).toBeLessThan(5000);

    // Reachable but wrong (here: no such database) is a configuration error: no retry.
    const missing = createDatabase({ kind: 'postgres', url: cluster.url.replace(/\/postgres$/, '/no_such_database'), logger: quiet });
    const calls: unknown[] = [];
    try {
      await expect(migrateWhenReachable(missing, { deadlineMs: 10_000, onRetry: (error) => calls.push(error) })).rejects.toMatchObject({ code: '3D000' });
    } finally {
      await missing.destroy();
    }
    expect(calls).toEqual([]);
  });

  it('answers 503 with a code while the database is down, stays up, and recovers when it is back', async () => {
    const token = await managementToken();
    const users = () => fetch(`${baseUrl}/api/users`, { headers: { authorization: `Bearer ${token}` } });
    expect((await users()).status).toBe(200);

    cluster.stop();
    try {
      for (let i = 0; i < 3; i += 1) {
        const down = await users();
        expect(down.status).toBe(503);
        expect(down.headers.get('retry-after')).toBe('5');
        expect(await down.json()).toEqual({ code: 'SERVICE_UNAVAILABLE', message: expect.any(String) });
      }
      // The OIDC endpoints answer in OAuth's shape, with the same status. (Introspecting an opaque
      // token needs the database; client_credentials may not: its client comes from the 5-second
      // application cache, and the token it issues is a JWT.)
      const tokenEndpoint = await fetch(`${baseUrl}/oidc/token/introspection`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${m2m.id}:${m2m.secret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ token: 'an-opaque-token-only-the-database-knows' }),
      });
      expect(tokenEndpoint.status).toBe(503);
      expect(await tokenEndpoint.json()).toMatchObject({ error: 'temporarily_unavailable' });

      const ready = await fetch(`${baseUrl}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ code: 'NOT_READY', checks: { database: 'unreachable' } });
      expect((await fetch(`${baseUrl}/healthz`)).status).toBe(200);
      expect(running[0]!.child.exitCode).toBeNull();
    } finally {
      cluster.start();
    }

    let status = 0;
    await until(async () => (status = (await users()).status) === 200, 15_000, `GET /api/users to succeed again (last ${status})`);
    expect((await fetch(`${baseUrl}/readyz`)).status).toBe(200);
    expect(await managementToken()).toBeTruthy();
    expect(running[0]!.output()).not.toContain('unhandled error');
  });

  it('on SIGTERM stops accepting connections, finishes the request in flight and exits 0', async () => {
    const sesame = running[0]!;
    // A request in flight: headers sent, the body still arriving.
    const socket = connect(Number(env.PORT), '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    let response = '';
    socket.on('data', (chunk) => (response += chunk));
    const socketClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const body = new URLSearchParams({ grant_type: 'client_credentials', resource: `${baseUrl}/api`, scope: 'all' }).toString();
    socket.write(
      `POST /oidc/token HTTP/1.1\r\nHost: localhost:${env.PORT}\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
        `Authorization: Basic ${Buffer.from(`${m2m.id}:${m2m.secret}`).toString('base64')}\r\nContent-Length: ${body.length}\r\n\r\n` +
        body.slice(0, 10),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));

    const signalled = Date.now();
    sesame.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(sesame.child.exitCode).toBeNull();
    await expect(fetch(`${baseUrl}/healthz`)).rejects.toThrow();

    socket.write(body.slice(10));
    await socketClosed;
    expect(response).toMatch(/^HTTP\/1\.1 200 /);
    expect(response).toMatch(/^Connection: close\r$/im);
    expect(response).toContain('"access_token"');
    expect(await sesame.exited).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(10_000);
  });

  it('loses nothing committed when killed with SIGKILL in the middle of a sign-in', async () => {
    const first = startSesame();
    await listening(first);
    const token = await managementToken();
    const created = await fetch(`${baseUrl}/api/applications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Resilience app', type: 'Traditional', oidcClientMetadata: { redirectUris: [REDIRECT_URI] } }),
    });
    expect(created.status).toBe(201);
    const app = (await created.json()) as { id: string; secret: string };
    const email = uniqueEmail('killed');
    const mint = await fetch(`${baseUrl}/api/one-time-tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email }),
    });
    expect(mint.status).toBe(201);
    const minted = (await mint.json()) as { id: string; token: string };

    // The user opened the link: the interaction page is showing when the server dies.
    const config = await oidc.discovery(new URL(`${baseUrl}/oidc`), app.id, app.secret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const authorize = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      one_time_token: minted.token,
      login_hint: email,
    });
    const browser = new CookieClient(baseUrl);
    const landing = await browser.follow(authorize.toString());
    expect(landing.url.pathname).toMatch(/^\/interaction\//);
    const page = await landing.response.text();

    first.child.kill('SIGKILL');
    await first.exited;

    const second = startSesame();
    await listening(second);
    const record = await fetch(`${baseUrl}/api/one-time-tokens/${minted.id}`, { headers: { authorization: `Bearer ${token}` } });
    expect(record.status).toBe(200);
    expect(await record.json()).toMatchObject({ id: minted.id, status: 'active' });

    // The same browser goes on where it was and is signed in.
    const done = await browser.submitForm(page, 'one-time-token');
    expect(done.url.origin + done.url.pathname).toBe(REDIRECT_URI);
    const tokens = await oidc.authorizationCodeGrant(config, done.url, { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
    expect(tokens.claims()!.email).toBe(email);
    const after = await fetch(`${baseUrl}/api/one-time-tokens/${minted.id}`, { headers: { authorization: `Bearer ${token}` } });
    expect((await after.json()).status).toBe('consumed');
  });
});
