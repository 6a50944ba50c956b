import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { CookieClient, formAction } from '../helpers/browser-client.ts';
import { databaseKind, uniqueEmail, usingPostgres } from '../helpers/db.ts';
import { freePort } from '../helpers/server.ts';

const root = new URL('../..', import.meta.url).pathname;
const REDIRECT_URI = 'http://127.0.0.1:5999/callback';

type Seen = { id: string | null; method: string; path: string; status: number };
type LogLine = { level: number; requestId?: string; method?: string; path?: string; route?: string; status?: number; msg?: string };

describe(`request logs (${databaseKind})`, () => {
  let child: ChildProcess;
  let stdout = '';
  let baseUrl: string;
  const m2m = { id: `logs-m2m-${randomBytes(4).toString('hex')}`, secret: randomBytes(32).toString('base64url') };
  const seen: Seen[] = [];
  const realFetch = globalThis.fetch;

  beforeAll(async () => {
    const port = await freePort();
    baseUrl = `http://localhost:${port}`;
    child = spawn(join(root, 'node_modules/.bin/tsx'), ['src/main.ts'], {
      cwd: root,
      env: {
        ...process.env,
        // Vitest sets BASE_URL=/ in its own environment: do not inherit it.
        BASE_URL: '',
        PORT: String(port),
        DATA_DIR: mkdtempSync(join(tmpdir(), 'sesame-logs-')),
        DATABASE_URL: process.env.DATABASE_URL ?? '',
        SESAME_SECRET: usingPostgres ? inject('sesameSecret') : '',
        SESAME_BOOTSTRAP_CLIENT_ID: m2m.id,
        SESAME_BOOTSTRAP_CLIENT_SECRET: m2m.secret,
        LOG_LEVEL: 'debug',
        // The shared PostgreSQL test database counts every test's failed verifications from 127.0.0.1.
        RATE_LIMIT_VERIFICATION_PER_IP: '1000000/1h',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stdout += chunk));
    const deadline = Date.now() + 60_000;
    while (!stdout.includes('Sesame is listening')) {
      if (child.exitCode !== null) throw new Error(`Sesame exited early:\n${stdout}`);
      if (Date.now() > deadline) throw new Error(`no banner within 60 s:\n${stdout}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Every response from this server passes here, whoever asks (openid-client or the cookie client).
    globalThis.fetch = async (input, init) => {
      const response = await realFetch(input, init);
      const url = new URL(input instanceof Request ? input.url : String(input));
      if (url.port === String(port)) {
        const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
        seen.push({ id: response.headers.get('x-request-id'), method, path: url.pathname, status: response.status });
      }
      return response;
    };
  });
  afterAll(async () => {
    globalThis.fetch = realFetch;
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('never logs tokens, codes or secrets, and gives each request line the id of its X-Request-Id header', async () => {
    const m2mConfig = await oidc.discovery(new URL(`${baseUrl}/oidc`), m2m.id, m2m.secret, undefined, { execute: [oidc.allowInsecureRequests] });
    const adminToken = (await oidc.clientCredentialsGrant(m2mConfig, { resource: `${baseUrl}/api`, scope: 'all' })).access_token;
    const api = async (method: string, path: string, body: unknown) => {
      const response = await fetch(`${baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(response.status).toBe(201);
      return response.json();
    };
    const app = (await api('POST', '/api/applications', {
      name: 'Logs app',
      type: 'Traditional',
      oidcClientMetadata: { redirectUris: [REDIRECT_URI], postLogoutRedirectUris: [REDIRECT_URI] },
    })) as { id: string; secret: string };
    const email = uniqueEmail('logs');
    const minted = (await api('POST', '/api/one-time-tokens', { email })) as { id: string; token: string };

    // Mint → authorize → confirm → code exchange → refresh, as a relying party does.
    const config = await oidc.discovery(new URL(`${baseUrl}/oidc`), app.id, app.secret, undefined, { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const authorize = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid email offline_access',
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      one_time_token: minted.token,
      login_hint: email,
    });
    const browser = new CookieClient(baseUrl);
    const landing = await browser.follow(authorize.toString());
    const done = await browser.submitForm(await landing.response.text(), 'one-time-token');
    const code = done.url.searchParams.get('code');
    expect(code).toBeTruthy();
    const tokens = await oidc.authorizationCodeGrant(config, done.url, { pkceCodeVerifier: verifier, expectedState: state });
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    await oidc.fetchUserInfo(config, refreshed.access_token, tokens.claims()!.sub);
    // Probes, answered at debug level.
    expect((await fetch(`${baseUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${baseUrl}/readyz`)).status).toBe(200);

    await new Promise((resolve) => setTimeout(resolve, 200));
    const logs = stdout;
    const secrets = {
      oneTimeToken: minted.token,
      code: code!,
      accessToken: tokens.access_token,
      idToken: tokens.id_token!,
      refreshToken: tokens.refresh_token!,
      refreshedAccessToken: refreshed.access_token,
      refreshedRefreshToken: refreshed.refresh_token!,
      clientSecret: app.secret,
      m2mSecret: m2m.secret,
      managementToken: adminToken,
    };
    for (const [name, value] of Object.entries(secrets)) {
      expect(value, name).toBeTruthy();
      expect(logs.includes(value), `${name} appears in the logs`).toBe(false);
    }

    const lines = logs
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as LogLine);
    const requestLines = lines.filter((line) => line.method !== undefined && line.status !== undefined);
    expect(seen.length).toBeGreaterThan(10);
    expect(requestLines).toHaveLength(seen.length);
    for (const response of seen) {
      expect(response.id).toMatch(/^[0-9a-f-]{36}$/);
      const line = requestLines.find((candidate) => candidate.requestId === response.id);
      expect(line, `${response.method} ${response.path}`).toMatchObject({ method: response.method, path: response.path, status: response.status });
      expect(line!.level).toBe(['/healthz', '/readyz'].includes(response.path) ? 20 : 30);
    }
    expect(new Set(requestLines.map((line) => line.requestId)).size).toBe(requestLines.length);
    // Routes are patterns: the interaction id is in the path, not in the route.
    expect(requestLines.map((line) => line.route)).toContain('/interaction/:uid');
    expect(requestLines.map((line) => line.route)).toContain('/oidc/token');
  });
});
