import type { Database } from '../db/index.ts';
import { AppError } from '../errors.ts';
import { createGroupCommit } from '../lib/group-commit.ts';
import type { EventBus, SesameEvent } from '../events/index.ts';
import { createAuditRepository, type AuditFilter } from './repository.ts';
import { dailyStats, daysBetween } from './stats.ts';

export { createAuditRepository, type AuditEntry, type AuditFilter, type AuditRepository } from './repository.ts';
export { dailyStats, daysBetween, type DayStats } from './stats.ts';

/**
 * Fields never written to the audit log, whatever event carries them:
 * `MagicLink.Requested.link` holds a live token (webhooks need it, the log
 * does not); the others are guards against a publisher's mistake.
 */
export const SECRET_FIELDS = new Set(['link', 'token', 'code', 'password', 'secret', 'otp']);

/** `code` is kept when it is one of the product's error codes (SignIn.Failed, Mfa.Failed), never digits. */
const isErrorCode = (key: string, value: unknown) => key === 'code' && typeof value === 'string' && /^[A-Z][A-Z_]{2,40}$/.test(value);

const MAX_DAYS = 366;

/** Audit rows per INSERT at most (group commit: src/lib/group-commit.ts). */
const MAX_BATCH = 500;

export type AuditLog = ReturnType<typeof createAuditLog>;

/** The row an event becomes: common fields in columns, the rest in `data`, secrets left out. */
export function auditEntryOf(event: SesameEvent) {
  const data: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event.data)) {
    if ((!SECRET_FIELDS.has(key) || isErrorCode(key, value)) && !['userId', 'email', 'applicationId'].includes(key)) data[key] = value;
  }
  const { userId, email, applicationId } = event.data as { userId?: string | null; email?: string | null; applicationId?: string | null };
  const { context } = event;
  return {
    createdAt: event.createdAt,
    event: event.name,
    result: event.result,
    userId: userId ?? null,
    email: email ?? null,
    applicationId: applicationId ?? context.clientId ?? null,
    ip: context.ip ?? null,
    userAgent: context.userAgent ?? null,
    deviceFingerprint: context.deviceFingerprint ?? null,
    requestId: context.requestId ?? null,
    data,
  };
}

/** The audit log: every event on the bus becomes a row; the Management API reads and counts them. */
export function createAuditLog(deps: { db: Database; events: EventBus; clock: () => Date }) {
  const repository = createAuditRepository(deps.db);
  // Each event's publish resolves once its own row is in the table; a sign-in's several events and those of concurrent requests share statements.
  const write = createGroupCommit(async (entries: Array<ReturnType<typeof auditEntryOf>>) => {
    await repository.insertMany(entries);
    return entries.map(() => undefined);
  }, { maxBatch: MAX_BATCH });
  deps.events.subscribe((event) => write(auditEntryOf(event)));

  return {
    list: (filter: AuditFilter, page: { page: number; pageSize: number }) => repository.list(filter, page),

    /**
     * Per-day counts for the UTC days `from`..`to` (YYYY-MM-DD, both
     * included); by default the last 30 days up to today.
     */
    async stats(range: { from?: string; to?: string }) {
      const to = range.to ?? deps.clock().toISOString().slice(0, 10);
      const from = range.from ?? new Date(Date.parse(`${to}T00:00:00Z`) - 29 * 24 * 3600 * 1000).toISOString().slice(0, 10);
      const span = daysBetween(from, to).length;
      if (span === 0) throw new AppError('INVALID_INPUT', 'from must not be after to.');
      if (span > MAX_DAYS) throw new AppError('INVALID_INPUT', `Ask for at most ${MAX_DAYS} days at a time.`);
      const end = new Date(Date.parse(`${to}T00:00:00Z`) + 24 * 3600 * 1000);
      const counts = await repository.dailyCounts(new Date(`${from}T00:00:00Z`), end);
      return { from, to, ...dailyStats(counts, from, to) };
    },
  };
}
