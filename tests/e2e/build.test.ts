import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildSesame } from '../../scripts/build.mjs';
import { freePort } from '../helpers/server.ts';

const root = new URL('../..', import.meta.url).pathname;
const packageVersion = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

describe('the compiled server (`npm start`)', () => {
  // Inside the repository (dist/ is ignored), so the bundle finds node_modules as dist/main.mjs does.
  mkdirSync(join(root, 'dist'), { recursive: true });
  const buildDir = mkdtempSync(join(root, 'dist', 'test-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'sesame-build-'));
  afterAll(() => {
    rmSync(buildDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('builds into one file that plain node serves from, and stops cleanly on SIGTERM', async () => {
    const started = performance.now();
    const bundle = await buildSesame({ outfile: join(buildDir, 'main.mjs') });
    expect(performance.now() - started).toBeLessThan(10_000);

    const port = await freePort();
    const baseUrl = `http://localhost:${port}`;
    // Started from another folder, with only the variables a deployment sets (no DATABASE_URL: the embedded database).
    const child = spawn(process.execPath, [bundle], {
      cwd: dataDir,
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'production',
        PORT: String(port),
        BASE_URL: baseUrl,
        DATA_DIR: join(dataDir, 'data'),
        SESAME_SECRET: randomBytes(32).toString('base64url'),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

    try {
      const deadline = Date.now() + 60_000;
      let ready = false;
      while (!ready && Date.now() < deadline) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the bundle exited early (${child.exitCode} ${child.signalCode}):\n${output}`);
        ready = await fetch(`${baseUrl}/readyz`).then((response) => response.ok, () => false);
        if (!ready) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(ready, `not ready within 60 s:\n${output}`).toBe(true);
      expect(output).toContain(`Sesame is listening on ${baseUrl}`);

      const discovery = (await (await fetch(`${baseUrl}/oidc/.well-known/openid-configuration`)).json()) as { issuer: string };
      expect(discovery.issuer).toBe(`${baseUrl}/oidc`);

      const openapi = (await (await fetch(`${baseUrl}/api/openapi.json`)).json()) as { info: { version: string } };
      expect(openapi.info.version).toBe(packageVersion);

      const home = await fetch(`${baseUrl}/`);
      expect(home.status).toBe(200);
      expect(home.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await home.text()).toContain('Sesame is running');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited, output).toBe(0);
  });

  it('`npm start` builds and serves, and a SIGTERM sent to npm alone stops the server (as a container runtime sends it)', async () => {
    const port = await freePort();
    const baseUrl = `http://localhost:${port}`;
    const npm = spawn('npm', ['start'], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? dataDir,
        NODE_ENV: 'production',
        PORT: String(port),
        BASE_URL: baseUrl,
        DATA_DIR: join(dataDir, 'npm-start'),
        SESAME_SECRET: randomBytes(32).toString('base64url'),
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    npm.stdout.on('data', (chunk) => (output += chunk));
    npm.stderr.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
    const answers = () => fetch(`${baseUrl}/healthz`).then((response) => response.ok, () => false);
    try {
      const deadline = Date.now() + 60_000;
      let ready = false;
      while (!ready && Date.now() < deadline) {
        if (npm.exitCode !== null) throw new Error(`npm start exited early (${npm.exitCode}):\n${output}`);
        ready = await answers();
        if (!ready) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(ready, `not ready within 60 s:\n${output}`).toBe(true);
    } finally {
      npm.kill('SIGTERM');
    }
    await exited;
    // The server itself must be gone, not only npm: a shell between them would leave it serving.
    const deadline = Date.now() + 10_000;
    while ((await answers()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await answers(), output).toBe(false);
    expect(output).toContain('shutting down');
  });
});
