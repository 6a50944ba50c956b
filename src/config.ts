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

/** A limit: at most `points` in any window of `seconds`. */
export type Rate = { points: number; seconds: number };

const unitSeconds = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/** `10/1h`, `30/10m`, `600/60` (seconds when no unit), or `off` (null). Undefined when malformed. */
export function parseRate(value: string): Rate | null | undefined {
  if (value.trim().toLowerCase() === 'off') return null;
  const match = /^\s*(\d{1,9})\s*\/\s*(\d{1,7})\s*([smhd]?)\s*$/.exec(value);
  if (!match) return undefined;
  const points = Number(match[1]);
  const seconds = Number(match[2]) * unitSeconds[(match[3] || 's') as keyof typeof unitSeconds];
  if (points < 1 || seconds < 1 || seconds > 366 * 86400) return undefined;
  return { points, seconds };
}

const rate = (name: string, fallback: string) =>
  z.preprocess(
    emptyToUndefined,
    z
      .string()
      .default(fallback)
      .transform((value, ctx) => {
        const parsed = parseRate(value);
        if (parsed === undefined) {
          ctx.addIssue({ code: 'custom', message: `${name} must be COUNT/WINDOW such as ${fallback} (window in s, m, h or d, at most a year) or off` });
          return z.NEVER;
        }
        return parsed;
      }),
  );

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

const seconds = (name: string, fallback: number, min: number, max: number) => wholeNumber(name, 'seconds', { min, max, default: fallback });

/** A true/false switch (`1`/`0` too). */
const flag = (name: string, fallback: boolean) =>
  z.preprocess(
    emptyToUndefined,
    z
      .enum(['true', 'false', '1', '0'], { message: `${name} must be true or false` })
      .default(fallback ? 'true' : 'false')
      .transform((value) => value === 'true' || value === '1'),
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
  DATABASE_PREPARED_STATEMENTS: flag('DATABASE_PREPARED_STATEMENTS', true),
  DATABASE_LISTEN_URL: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'DATABASE_LISTEN_URL must start with postgres:// or postgresql://')
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
  TRUST_PROXY: flag('TRUST_PROXY', false),
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
  RATE_LIMIT_EMAIL_SEND_PER_EMAIL: rate('RATE_LIMIT_EMAIL_SEND_PER_EMAIL', '10/1h'),
  RATE_LIMIT_EMAIL_SEND_PER_IP: rate('RATE_LIMIT_EMAIL_SEND_PER_IP', '50/1h'),
  RATE_LIMIT_VERIFICATION_PER_IP: rate('RATE_LIMIT_VERIFICATION_PER_IP', '30/10m'),
  RATE_LIMIT_PASSWORD_PER_IP_EMAIL: rate('RATE_LIMIT_PASSWORD_PER_IP_EMAIL', '10/15m'),
  RATE_LIMIT_TOKEN_MINT_PER_CLIENT: rate('RATE_LIMIT_TOKEN_MINT_PER_CLIENT', '600/1m'),
  AUTO_BAN_AFTER: rate('AUTO_BAN_AFTER', '5/1h'),
  AUTO_BAN_SECONDS: seconds('AUTO_BAN_SECONDS', 24 * 3600, 60, 366 * 86400),
  BAN_CACHE_SECONDS: seconds('BAN_CACHE_SECONDS', 5, 0, 60),
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
  /** The resource indicator of a user's own account API (`/api/my-account`). */
  myAccountResource: string;
  databaseUrl: string | undefined;
  /** Hot statements as named prepared statements on PostgreSQL (src/db/statements.ts); off behind a pooler that cannot keep them. */
  preparedStatements: boolean;
  /** Where the cache invalidation listener connects (a session, not a transaction-mode pooler); default: databaseUrl. */
  databaseListenUrl: string | undefined;
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
  /** Each limit, or null when switched off (src/ratelimit/). */
  rateLimits: RateLimitConfig;
  /** IP bans: automatic after `autoBanAfter` refusals (null: never) for `autoBanSeconds`; the ban list is re-read every `cacheSeconds`. */
  bans: { autoBanAfter: Rate | null; autoBanSeconds: number; cacheSeconds: number };
};

export type RateLimitConfig = {
  emailSendPerEmail: Rate | null;
  emailSendPerIp: Rate | null;
  verificationPerIp: Rate | null;
  passwordPerIpEmail: Rate | null;
  tokenMintPerClient: Rate | null;
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
  if (e.DATABASE_LISTEN_URL && !e.DATABASE_URL) {
    throw new ConfigError(['DATABASE_LISTEN_URL: set it only with DATABASE_URL (the embedded database needs no listener)']);
  }
  const baseUrl = (e.BASE_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, '');
  const dataDir = resolve(e.DATA_DIR);
  const production = e.NODE_ENV === 'production';
  return {
    port: e.PORT,
    baseUrl,
    issuer: `${baseUrl}/oidc`,
    managementApiResource: `${baseUrl}/api`,
    myAccountResource: `${baseUrl}/api/my-account`,
    databaseUrl: e.DATABASE_URL,
    preparedStatements: e.DATABASE_PREPARED_STATEMENTS,
    databaseListenUrl: e.DATABASE_LISTEN_URL,
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
    rateLimits: {
      emailSendPerEmail: e.RATE_LIMIT_EMAIL_SEND_PER_EMAIL,
      emailSendPerIp: e.RATE_LIMIT_EMAIL_SEND_PER_IP,
      verificationPerIp: e.RATE_LIMIT_VERIFICATION_PER_IP,
      passwordPerIpEmail: e.RATE_LIMIT_PASSWORD_PER_IP_EMAIL,
      tokenMintPerClient: e.RATE_LIMIT_TOKEN_MINT_PER_CLIENT,
    },
    bans: { autoBanAfter: e.AUTO_BAN_AFTER, autoBanSeconds: e.AUTO_BAN_SECONDS, cacheSeconds: e.BAN_CACHE_SECONDS },
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
