import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../src/config.ts';
import { createSesame, type Sesame } from '../../src/main.ts';
import type { Database } from '../../src/db/index.ts';
import { timeStep, totpCode } from '../../src/mfa/index.ts';
import { openTestDatabase } from './db.ts';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export const generousLimits = {
  RATE_LIMIT_EMAIL_SEND_PER_EMAIL: '1000000/1h',
  RATE_LIMIT_EMAIL_SEND_PER_IP: '1000000/1h',
  RATE_LIMIT_VERIFICATION_PER_IP: '1000000/1h',
  RATE_LIMIT_PASSWORD_PER_IP_EMAIL: '1000000/1h',
  RATE_LIMIT_TOKEN_MINT_PER_CLIENT: '1000000/1h',
  AUTO_BAN_AFTER: 'off',
};

export type TestSesame = {
  sesame: Sesame;
  config: Config;
  /** Where this instance really listens (differs from baseUrl for a second instance). */
  listenUrl: string;
  db: Database;
  baseUrl: string;
  issuer: string;
  m2m: { id: string; secret: string };
  /** Moves Sesame's clock (one-time token expiry) forward. */
  advanceClock: (seconds: number) => void;
  close: () => Promise<void>;
};

/**
 * A real Sesame on a random loopback port, on a real database: its own (or
 * the shared PostgreSQL) unless `options.db` is given, which it then leaves open.
 */
export async function startTestSesame(
  env: Record<string, string> = {},
  options: { db?: Database; keyPollMs?: number; baseUrl?: string } = {},
): Promise<TestSesame> {
  const port = await freePort();
  // Another instance behind the same public URL listens on its own port.
  const baseUrl = options.baseUrl ?? `http://localhost:${port}`;
  const m2m = { id: `test-m2m-${randomBytes(4).toString('hex')}`, secret: randomBytes(32).toString('base64url') };
  const config = loadConfig({
    PORT: String(port),
    BASE_URL: baseUrl,
    DATA_DIR: mkdtempSync(join(tmpdir(), 'sesame-test-')),
    SESAME_SECRET: inject('sesameSecret'),
    SESAME_BOOTSTRAP_CLIENT_ID: m2m.id,
    SESAME_BOOTSTRAP_CLIENT_SECRET: m2m.secret,
    LOG_LEVEL: 'silent',
    // Test files share 127.0.0.1 (and, on PostgreSQL, the counters): limits out of reach and no automatic
    // bans unless a test asks for them (tests/e2e/rate-limits.test.ts, banned-ips.test.ts).
    ...generousLimits,
    ...env,
  });
  const db = options.db ?? (await openTestDatabase());
  let offsetMs = 0;
  const sesame = await createSesame({
    config,
    db,
    clock: () => new Date(Date.now() + offsetMs),
    demoClientId: `demo-${randomBytes(4).toString('hex')}`,
    keyPollMs: options.keyPollMs,
  });
  await sesame.listen(port, '127.0.0.1');
  return {
    sesame,
    config,
    listenUrl: `http://localhost:${port}`,
    db,
    baseUrl,
    issuer: config.issuer,
    m2m,
    advanceClock: (seconds) => {
      offsetMs += seconds * 1000;
    },
    close: async () => {
      await sesame.close();
      if (!options.db) await db.destroy();
    },
  };
}

/** A Management API access token from client_credentials, as a backend gets one. */
export async function managementToken(t: TestSesame, client = t.m2m, scope = 'all'): Promise<string> {
  const response = await fetch(`${t.listenUrl}/oidc/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${t.baseUrl}/api`, scope }),
  });
  const body = (await response.json()) as { access_token?: string };
  if (!response.ok || !body.access_token) throw new Error(`client_credentials failed: ${response.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

export async function api(
  t: TestSesame,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined || options.rawBody !== undefined) headers['content-type'] ??= 'application/json';
  const response = await fetch(`${t.listenUrl}${path}`, {
    method,
    headers,
    body: options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
  });
  const text = await response.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, body: json, text };
}

export async function mintToken(t: TestSesame, token: string, body: Record<string, unknown>) {
  const response = await api(t, 'POST', '/api/one-time-tokens', { token, body });
  if (response.status !== 201) throw new Error(`mint failed: ${response.status} ${response.text}`);
  return response.body as { id: string; token: string; email: string; status: string; expiresAt: string };
}

/** Registers a Traditional application with a loopback redirect URI. */
export async function createTestApplication(t: TestSesame, token: string, redirectUri: string, type = 'Traditional') {
  const response = await api(t, 'POST', '/api/applications', {
    token,
    body: { name: 'Test app', type, oidcClientMetadata: { redirectUris: [redirectUri], postLogoutRedirectUris: [redirectUri] } },
  });
  if (response.status !== 201) throw new Error(`application failed: ${response.status} ${response.text}`);
  return response.body as { id: string; secret: string | null };
}

/**
 * An authenticator app reading Sesame's clock: `advance` moves Sesame's clock
 * (so each code can be in a fresh time step), `codeFor` shows the code of the
 * current step.
 */
export function authenticatorClock(sesame: () => TestSesame) {
  let offsetSeconds = 0;
  const now = () => new Date(Date.now() + offsetSeconds * 1000);
  return {
    now,
    advance(seconds: number) {
      offsetSeconds += seconds;
      sesame().advanceClock(seconds);
    },
    codeFor: (secret: string) => totpCode(secret, timeStep(now())),
  };
}
