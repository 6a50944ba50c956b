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


/** Starts `command` with only the variables a deployment sets, collecting its output. */
function startServer(command: string, args: string[], options: { cwd: string; port: number; dataDir: string; logLevel: string }) {
  const baseUrl = `http://localhost:${options.port}`;
  const child = spawn(command, args, {
    cwd: options.cwd,
    // No DATABASE_URL: the embedded database.
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? options.dataDir,
      NODE_ENV: 'production',
      PORT: String(options.port),
      BASE_URL: baseUrl,
      DATA_DIR: options.dataDir,
      SESAME_SECRET: randomBytes(32).toString('base64url'),
      LOG_LEVEL: options.logLevel,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const answers = (path: string) => fetch(`${baseUrl}${path}`).then((response) => response.ok, () => false);
  return {
    child,
    baseUrl,
    exited,
    output: () => output,
    answers,
    /** Polls `path` until it answers 2xx (60 s at most); fails at once if the process exits. */
    async waitUntilReady(path: string) {
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${command} exited early (${child.exitCode} ${child.signalCode}):\n${output}`);
        if (await answers(path)) return;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      throw new Error(`not ready within 60 s:\n${output}`);
    },
  };
}

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

    // Started from another folder than the repository.
    const server = startServer(process.execPath, [bundle], { cwd: dataDir, port: await freePort(), dataDir: join(dataDir, 'data'), logLevel: 'warn' });
    const { baseUrl } = server;
    try {
      await server.waitUntilReady('/readyz');
      expect(server.output()).toContain(`Sesame is listening on ${baseUrl}`);

      const discovery = (await (await fetch(`${baseUrl}/oidc/.well-known/openid-configuration`)).json()) as { issuer: string };
      expect(discovery.issuer).toBe(`${baseUrl}/oidc`);

      const openapi = (await (await fetch(`${baseUrl}/api/openapi.json`)).json()) as { info: { version: string } };
      expect(openapi.info.version).toBe(packageVersion);

      const home = await fetch(`${baseUrl}/`);
      expect(home.status).toBe(200);
      expect(home.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await home.text()).toContain('Sesame is running');
    } finally {
      server.child.kill('SIGTERM');
    }
    expect(await server.exited, server.output()).toBe(0);
  });

  it('`npm start` builds and serves, and a SIGTERM sent to npm alone stops the server (as a container runtime sends it)', async () => {
    const npm = startServer('npm', ['start'], { cwd: root, port: await freePort(), dataDir: join(dataDir, 'npm-start'), logLevel: 'info' });
    try {
      await npm.waitUntilReady('/healthz');
    } finally {
      npm.child.kill('SIGTERM');
    }
    await npm.exited;
    // The server itself must be gone, not only npm: a shell between them would leave it serving.
    const deadline = Date.now() + 10_000;
    while ((await npm.answers('/healthz')) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await npm.answers('/healthz'), npm.output()).toBe(false);
    expect(npm.output()).toContain('shutting down');
  });
});
