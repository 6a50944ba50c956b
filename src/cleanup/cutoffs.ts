import type { Config } from '../config.ts';

/** How long each kind of row outlives its use. */
export type RetentionPolicy = {
  /** Consumed and revoked one-time tokens are kept this long after use, for audit (AUDIT_RETENTION_DAYS). */
  auditDays: number;
  /** Expired, never-used one-time tokens stay listed as "expired" this long before they go. */
  expiredTokenGraceDays: number;
  /**
   * Provider rows go this long after they expire: a margin for clock skew
   * between instances, since each decides expiry by its own clock.
   */
  providerModelGraceSeconds: number;
  /** Audit log rows are kept this long (AUDIT_LOG_RETENTION_DAYS). */
  auditLogDays: number;
  /** Webhook delivery log rows are kept this long after they were queued (HOOK_DELIVERY_RETENTION_DAYS). */
  hookDeliveryDays: number;
};

export const DEFAULT_RETENTION: RetentionPolicy = {
  auditDays: 30,
  expiredTokenGraceDays: 1,
  providerModelGraceSeconds: 300,
  auditLogDays: 90,
  hookDeliveryDays: 30,
};

/** The retention the configuration asks for (AUDIT_RETENTION_DAYS, AUDIT_LOG_RETENTION_DAYS, HOOK_DELIVERY_RETENTION_DAYS). */
export function retentionOf(config: Pick<Config, 'cleanup' | 'audit' | 'hooks'>): Pick<RetentionPolicy, 'auditDays' | 'auditLogDays' | 'hookDeliveryDays'> {
  return { auditDays: config.cleanup.auditRetentionDays, auditLogDays: config.audit.logRetentionDays, hookDeliveryDays: config.hooks.deliveryRetentionDays };
}

/** Rows are purged when their deciding timestamp is strictly before these instants. */
export type Cutoffs = {
  /** oidc_model_instances.expires_at */
  providerModelsExpiredBefore: Date;
  /** one_time_tokens.expires_at of tokens still `active` (never used) */
  tokensExpiredBefore: Date;
  /** one_time_tokens.consumed_at */
  consumedBefore: Date;
  /** one_time_tokens.revoked_at */
  revokedBefore: Date;
  /** banned_ips.expires_at and rate_limits.expire: both useless once past */
  expiredBefore: Date;
  /** audit_logs.created_at */
  auditLogsBefore: Date;
  /** hook_deliveries.created_at of deliveries that are over (succeeded or failed) */
  hookDeliveriesBefore: Date;
};

const DAY_MS = 24 * 3600 * 1000;

/** The purge cutoffs at `now`. Pure: the job passes its clock's time in. */
export function cleanupCutoffs(now: Date, retention: RetentionPolicy): Cutoffs {
  for (const [name, value] of Object.entries(retention)) {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`retention.${name} must be a non-negative number, not ${value}`);
  }
  const before = (ms: number) => new Date(now.getTime() - ms);
  const audit = before(retention.auditDays * DAY_MS);
  return {
    providerModelsExpiredBefore: before(retention.providerModelGraceSeconds * 1000),
    tokensExpiredBefore: before(retention.expiredTokenGraceDays * DAY_MS),
    consumedBefore: audit,
    revokedBefore: audit,
    expiredBefore: now,
    auditLogsBefore: before(retention.auditLogDays * DAY_MS),
    hookDeliveriesBefore: before(retention.hookDeliveryDays * DAY_MS),
  };
}
