import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';

/**
 * Environment configuration, parsed once at start. Every problem names the
 * variable it comes from so a bad deployment fails before serving anything.
 */
const emptyToUndefined = (value: unknown) => (value === '' ? undefined : value);

const url = (name: string) =>
  z.string().refine((value) => {
    try {
      const parsed = new URL(value);
      return ['http:', 'https:'].includes(parsed.protocol);
    } catch {
      return false;
    }
  }, `${name} must be an absolute http(s) URL`);

/** A whole number in [min, max] with a default; messages name the variable and the unit. */
const wholeNumber = (name: string, unit: string, bounds: { min: number; max: number; maxLabel?: string; default: number }) =>
  z.preprocess(
    emptyToUndefined,
    z.coerce
      .number({ message: `${name} must be a number of ${unit}` })
      .int(`${name} must be a whole number of ${unit}`)
      .min(bounds.min, `${name} must be at least ${bounds.min}`)
      .max(bounds.max, `${name} must be at most ${bounds.max}${bounds.maxLabel ? ` (${bounds.maxLabel})` : ''}`)
      .default(bounds.default),
  );

const envSchema = z.object({
  PORT: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).max(65535).default(3001)),
  BASE_URL: z.preprocess(emptyToUndefined, url('BASE_URL').optional()),
  DATABASE_URL: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'DATABASE_URL must start with postgres:// or postgresql://')
      .optional(),
  ),
  DATA_DIR: z.preprocess(emptyToUndefined, z.string().default('./data')),
  SESAME_SECRET: z.preprocess(
    emptyToUndefined,
    z.string().min(32, 'SESAME_SECRET must be at least 32 characters').optional(),
  ),
  SESAME_BOOTSTRAP_CLIENT_ID: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .regex(/^[A-Za-z0-9_-]{3,64}$/, 'SESAME_BOOTSTRAP_CLIENT_ID must be 3-64 characters of A-Z a-z 0-9 _ -')
      .optional(),
  ),
  SESAME_BOOTSTRAP_CLIENT_SECRET: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .regex(
        /^[A-Za-z0-9_-]{32,128}$/,
        'SESAME_BOOTSTRAP_CLIENT_SECRET must be 32-128 url-safe characters (A-Z a-z 0-9 _ -)',
      )
      .optional(),
  ),
  SMTP_URL: z.preprocess(
    emptyToUndefined,
    z.string().regex(/^smtps?:\/\//, 'SMTP_URL must start with smtp:// or smtps://').optional(),
  ),
  EMAIL_FROM: z.preprocess(emptyToUndefined, z.string().default('Sesame <no-reply@localhost>')),
  LOG_LEVEL: z.preprocess(
    emptyToUndefined,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
  NODE_ENV: z.preprocess(emptyToUndefined, z.string().default('development')),
  ONE_TIME_TOKEN_MAX_EXPIRES_IN: z.preprocess(
    emptyToUndefined,
    z.coerce
      .number({ message: 'ONE_TIME_TOKEN_MAX_EXPIRES_IN must be a number of seconds' })
      .int()
      .min(600, 'ONE_TIME_TOKEN_MAX_EXPIRES_IN must be at least 600 (the default lifetime)')
      .max(90 * 24 * 3600, 'ONE_TIME_TOKEN_MAX_EXPIRES_IN must be at most 90 days (7776000)')
      .default(7 * 24 * 3600),
  ),
  TRUST_PROXY: z.preprocess(
    emptyToUndefined,
    z
      .enum(['true', 'false', '1', '0'], { message: 'TRUST_PROXY must be true or false' })
      .default('false')
      .transform((value) => value === 'true' || value === '1'),
  ),
  CLEANUP_INTERVAL_SECONDS: z.preprocess(
    emptyToUndefined,
    z.coerce
      .number({ message: 'CLEANUP_INTERVAL_SECONDS must be a number of seconds' })
      .int('CLEANUP_INTERVAL_SECONDS must be a whole number of seconds')
      .min(0, 'CLEANUP_INTERVAL_SECONDS must be 0 (off) or more')
      .max(24 * 3600, 'CLEANUP_INTERVAL_SECONDS must be at most 86400 (a day)')
      .default(300),
  ),
  AUDIT_RETENTION_DAYS: z.preprocess(
    emptyToUndefined,
    z.coerce
      .number({ message: 'AUDIT_RETENTION_DAYS must be a number of days' })
      .int('AUDIT_RETENTION_DAYS must be a whole number of days')
      .min(1, 'AUDIT_RETENTION_DAYS must be at least 1')
      .max(3650, 'AUDIT_RETENTION_DAYS must be at most 3650 (ten years)')
      .default(30),
  ),
  AUDIT_LOG_RETENTION_DAYS: wholeNumber('AUDIT_LOG_RETENTION_DAYS', 'days', { min: 1, max: 3650, maxLabel: 'ten years', default: 90 }),
  HOOK_DELIVERY_RETENTION_DAYS: wholeNumber('HOOK_DELIVERY_RETENTION_DAYS', 'days', { min: 1, max: 3650, maxLabel: 'ten years', default: 30 }),
  HOOK_TIMEOUT_MS: wholeNumber('HOOK_TIMEOUT_MS', 'milliseconds', { min: 100, max: 60_000, maxLabel: 'a minute', default: 10_000 }),
  HOOK_MAX_ATTEMPTS: wholeNumber('HOOK_MAX_ATTEMPTS', 'attempts', { min: 1, max: 20, default: 8 }),
  HOOK_RETRY_BASE_MS: wholeNumber('HOOK_RETRY_BASE_MS', 'milliseconds', { min: 10, max: 3_600_000, maxLabel: 'an hour', default: 30_000 }),
  HOOK_POLL_INTERVAL_MS: wholeNumber('HOOK_POLL_INTERVAL_MS', 'milliseconds', { min: 50, max: 600_000, maxLabel: 'ten minutes', default: 5_000 }),
  METRICS_TOKEN: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .regex(/^[\x21-\x7e]{16,}$/, 'METRICS_TOKEN must be at least 16 printable characters without spaces')
      .optional(),
  ),
});

export type Config = {
  port: number;
  baseUrl: string;
  issuer: string;
  managementApiResource: string;
  databaseUrl: string | undefined;
  dataDir: string;
  secret: string;
  bootstrapClient: { id: string | undefined; secret: string | undefined };
  smtpUrl: string | undefined;
  emailFrom: string;
  logLevel: string;
  production: boolean;
  /** Dev-only pages (/demo) are served only on a non-production, embedded setup or when asked. */
  devPages: boolean;
  oneTimeTokens: { defaultExpiresIn: number; maxExpiresIn: number };
  /** Believe X-Forwarded-For/-Proto/-Host from a reverse proxy (never from clients directly). */
  trustProxy: boolean;
  /** When set, `GET /metrics` requires `Authorization: Bearer <metricsToken>`. */
  metricsToken: string | undefined;
  /** The purge of expired and old rows: every `intervalSeconds` (0: never); used tokens kept `auditRetentionDays`. */
  cleanup: { intervalSeconds: number; auditRetentionDays: number };
  /** Audit log rows are trimmed by the cleanup after `logRetentionDays`. */
  audit: { logRetentionDays: number };
  /** Webhook delivery: per-attempt timeout, attempts, backoff, worker poll; delivery log rows kept `deliveryRetentionDays`. */
  hooks: { timeoutMs: number; maxAttempts: number; retryBaseMs: number; pollIntervalMs: number; deliveryRetentionDays: number };
};

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid configuration:\n${issues.map((issue) => `  - ${issue}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Reads the secret from DATA_DIR, generating it once when absent. Two
 * processes starting together on a fresh DATA_DIR agree on one secret: the
 * file is created exclusively and the loser reads the winner's.
 */
function loadOrCreateSecret(dataDir: string): string {
  const file = join(dataDir, 'sesame-secret');
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    try {
      writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  const secret = readFileSync(file, 'utf8').trim();
  if (secret.length < 32) {
    throw new ConfigError([
      `SESAME_SECRET: the generated secret in ${file} is shorter than 32 characters (damaged?). ` +
        'Restore it from a backup or set SESAME_SECRET; a new secret cannot unseal existing keys.',
    ]);
  }
  return secret;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join('.') || 'env'}: ${issue.message}`),
    );
  }
  const e = parsed.data;
  const baseUrl = (e.BASE_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, '');
  const dataDir = resolve(e.DATA_DIR);
  const production = e.NODE_ENV === 'production';
  return {
    port: e.PORT,
    baseUrl,
    issuer: `${baseUrl}/oidc`,
    managementApiResource: `${baseUrl}/api`,
    databaseUrl: e.DATABASE_URL,
    dataDir,
    secret: e.SESAME_SECRET ?? loadOrCreateSecret(dataDir),
    bootstrapClient: { id: e.SESAME_BOOTSTRAP_CLIENT_ID, secret: e.SESAME_BOOTSTRAP_CLIENT_SECRET },
    smtpUrl: e.SMTP_URL,
    emailFrom: e.EMAIL_FROM,
    logLevel: e.LOG_LEVEL,
    production,
    devPages: !production,
    oneTimeTokens: { defaultExpiresIn: 600, maxExpiresIn: e.ONE_TIME_TOKEN_MAX_EXPIRES_IN },
    trustProxy: e.TRUST_PROXY,
    metricsToken: e.METRICS_TOKEN,
    cleanup: { intervalSeconds: e.CLEANUP_INTERVAL_SECONDS, auditRetentionDays: e.AUDIT_RETENTION_DAYS },
    audit: { logRetentionDays: e.AUDIT_LOG_RETENTION_DAYS },
    hooks: {
      timeoutMs: e.HOOK_TIMEOUT_MS,
      maxAttempts: e.HOOK_MAX_ATTEMPTS,
      retryBaseMs: e.HOOK_RETRY_BASE_MS,
      pollIntervalMs: e.HOOK_POLL_INTERVAL_MS,
      deliveryRetentionDays: e.HOOK_DELIVERY_RETENTION_DAYS,
    },
  };
}
