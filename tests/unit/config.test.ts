import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

const secret = randomBytes(32).toString('base64url');

const scratchDirs: string[] = [];
function freshDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sesame-config-'));
  scratchDirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of scratchDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** The ConfigError thrown for `env`; fails the test when none is thrown. */
function configErrorFor(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig({ SESAME_SECRET: secret, DATA_DIR: freshDataDir(), ...env });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

describe('loading the configuration', () => {
  it('serves on port 3001 at http://localhost:3001 with the issuer under /oidc by default', () => {
    const config = loadConfig({ SESAME_SECRET: secret });
    expect(config.port).toBe(3001);
    expect(config.baseUrl).toBe('http://localhost:3001');
    expect(config.issuer).toBe('http://localhost:3001/oidc');
    expect(config.databaseUrl).toBeUndefined();
    expect(config.production).toBe(false);
    expect(config.oneTimeTokens).toEqual({ defaultExpiresIn: 600, maxExpiresIn: 7 * 24 * 3600 });
  });

  it('uses the port in the default base URL', () => {
    const config = loadConfig({ SESAME_SECRET: secret, PORT: '4100' });
    expect(config.port).toBe(4100);
    expect(config.baseUrl).toBe('http://localhost:4100');
  });

  it('treats empty variables as unset', () => {
    const config = loadConfig({ SESAME_SECRET: secret, PORT: '', BASE_URL: '', DATABASE_URL: '' });
    expect(config.port).toBe(3001);
    expect(config.baseUrl).toBe('http://localhost:3001');
    expect(config.databaseUrl).toBeUndefined();
  });

  it('strips trailing slashes from BASE_URL so the issuer has no double slash', () => {
    const config = loadConfig({ SESAME_SECRET: secret, BASE_URL: 'https://id.example.com//' });
    expect(config.baseUrl).toBe('https://id.example.com');
    expect(config.issuer).toBe('https://id.example.com/oidc');
    expect(config.managementApiResource).toBe('https://id.example.com/api');
  });

  it('keeps a path in BASE_URL', () => {
    expect(loadConfig({ SESAME_SECRET: secret, BASE_URL: 'https://example.com/sesame/' }).issuer).toBe(
      'https://example.com/sesame/oidc',
    );
  });

  it('accepts a PostgreSQL URL in either spelling', () => {
    expect(loadConfig({ SESAME_SECRET: secret, DATABASE_URL: 'postgres://u@db/sesame' }).databaseUrl).toBe('postgres://u@db/sesame');
    expect(loadConfig({ SESAME_SECRET: secret, DATABASE_URL: 'postgresql://u@db/sesame' }).databaseUrl).toBe(
      'postgresql://u@db/sesame',
    );
  });

  it('listens for cache invalidations on DATABASE_URL unless DATABASE_LISTEN_URL names a direct connection', () => {
    expect(loadConfig({ SESAME_SECRET: secret, DATABASE_URL: 'postgres://u@pgbouncer/sesame' }).databaseListenUrl).toBeUndefined();
    const config = loadConfig({ SESAME_SECRET: secret, DATABASE_URL: 'postgres://u@pgbouncer/sesame', DATABASE_LISTEN_URL: 'postgres://u@db/sesame' });
    expect(config.databaseListenUrl).toBe('postgres://u@db/sesame');
  });
});

describe('a bad configuration fails with an error naming the variable', () => {
  it('names PORT when it is not a port number', () => {
    expect(configErrorFor({ PORT: 'http' }).message).toContain('PORT');
    expect(configErrorFor({ PORT: '70000' }).message).toContain('PORT');
    expect(configErrorFor({ PORT: '30.5' }).message).toContain('PORT');
  });

  it('names BASE_URL when it is not an absolute http(s) URL', () => {
    expect(configErrorFor({ BASE_URL: 'id.example.com' }).message).toContain('BASE_URL');
    expect(configErrorFor({ BASE_URL: 'ftp://id.example.com' }).message).toContain('BASE_URL');
  });

  it('names DATABASE_URL when it is not a PostgreSQL URL', () => {
    expect(configErrorFor({ DATABASE_URL: 'mysql://u@db/sesame' }).message).toContain('DATABASE_URL');
  });

  it('prepares statements on PostgreSQL unless DATABASE_PREPARED_STATEMENTS says false, and names a bad value', () => {
    const load = (value?: string) =>
      loadConfig({ SESAME_SECRET: secret, DATA_DIR: freshDataDir(), ...(value === undefined ? {} : { DATABASE_PREPARED_STATEMENTS: value }) });
    expect(load().preparedStatements).toBe(true);
    expect(load('').preparedStatements).toBe(true);
    expect(load('false').preparedStatements).toBe(false);
    expect(load('0').preparedStatements).toBe(false);
    expect(configErrorFor({ DATABASE_PREPARED_STATEMENTS: 'no' }).message).toContain('DATABASE_PREPARED_STATEMENTS must be true or false');
  });

  it('names DATABASE_LISTEN_URL when it is not a PostgreSQL URL, or is set without DATABASE_URL', () => {
    expect(configErrorFor({ DATABASE_URL: 'postgres://u@db/sesame', DATABASE_LISTEN_URL: 'db:5432' }).message).toContain('DATABASE_LISTEN_URL');
    expect(configErrorFor({ DATABASE_LISTEN_URL: 'postgres://u@db/sesame' }).message).toContain('DATABASE_LISTEN_URL');
  });

  it('names SESAME_SECRET when it is shorter than 32 characters', () => {
    expect(configErrorFor({ SESAME_SECRET: 'x'.repeat(31) }).message).toContain('SESAME_SECRET');
  });

  it('names SESAME_BOOTSTRAP_CLIENT_SECRET when it is too short or not url-safe', () => {
    expect(configErrorFor({ SESAME_BOOTSTRAP_CLIENT_SECRET: 'short' }).message).toContain('SESAME_BOOTSTRAP_CLIENT_SECRET');
    expect(configErrorFor({ SESAME_BOOTSTRAP_CLIENT_SECRET: `${'a'.repeat(40)}+/=` }).message).toContain(
      'SESAME_BOOTSTRAP_CLIENT_SECRET',
    );
  });

  it('lists every bad variable at once', () => {
    const error = configErrorFor({ PORT: 'nope', DATABASE_URL: 'sqlite://x' });
    expect(error.issues).toHaveLength(2);
    expect(error.message).toContain('PORT');
    expect(error.message).toContain('DATABASE_URL');
  });
});

describe('the master secret when SESAME_SECRET is unset', () => {
  it('is generated into DATA_DIR, readable only by its owner', () => {
    const dataDir = freshDataDir();
    const config = loadConfig({ DATA_DIR: dataDir });
    const file = join(dataDir, 'sesame-secret');
    expect(existsSync(file)).toBe(true);
    expect(readFileSync(file, 'utf8').trim()).toBe(config.secret);
    expect(config.secret.length).toBeGreaterThanOrEqual(32);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('is the same secret on the next start', () => {
    const dataDir = freshDataDir();
    const first = loadConfig({ DATA_DIR: dataDir });
    const second = loadConfig({ DATA_DIR: dataDir });
    expect(second.secret).toBe(first.secret);
  });

  it('creates DATA_DIR when it does not exist yet', () => {
    const dataDir = join(freshDataDir(), 'nested', 'data');
    const config = loadConfig({ DATA_DIR: dataDir });
    expect(config.dataDir).toBe(dataDir);
    expect(readFileSync(join(dataDir, 'sesame-secret'), 'utf8').trim()).toBe(config.secret);
  });

  it('differs between installations', () => {
    expect(loadConfig({ DATA_DIR: freshDataDir() }).secret).not.toBe(loadConfig({ DATA_DIR: freshDataDir() }).secret);
  });

  it('is not written when SESAME_SECRET is set', () => {
    const dataDir = freshDataDir();
    expect(loadConfig({ DATA_DIR: dataDir, SESAME_SECRET: secret }).secret).toBe(secret);
    expect(existsSync(join(dataDir, 'sesame-secret'))).toBe(false);
  });

  it('refuses a damaged (short or empty) secret file instead of deriving keys from it', () => {
    for (const content of ['', 'short\n']) {
      const dataDir = freshDataDir();
      writeFileSync(join(dataDir, 'sesame-secret'), content);
      expect(() => loadConfig({ DATA_DIR: dataDir })).toThrow(ConfigError);
      expect(() => loadConfig({ DATA_DIR: dataDir })).toThrow(/SESAME_SECRET.*sesame-secret/);
    }
  });
});

describe('ONE_TIME_TOKEN_MAX_EXPIRES_IN', () => {
  it('defaults to 7 days and can be raised or lowered within bounds', () => {
    expect(loadConfig({ SESAME_SECRET: secret }).oneTimeTokens.maxExpiresIn).toBe(604_800);
    expect(loadConfig({ SESAME_SECRET: secret, ONE_TIME_TOKEN_MAX_EXPIRES_IN: '2592000' }).oneTimeTokens.maxExpiresIn).toBe(2_592_000);
    for (const bad of ['59', 'a week', '7776001']) {
      expect(() => loadConfig({ SESAME_SECRET: secret, ONE_TIME_TOKEN_MAX_EXPIRES_IN: bad }), bad).toThrow(/ONE_TIME_TOKEN_MAX_EXPIRES_IN/);
    }
  });
});
