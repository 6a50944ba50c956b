import { createCleanupJob, retentionOf, type CleanupReport } from '../cleanup/index.ts';
import { parseOptions } from './args.ts';
import { fields, type Command } from './context.ts';

const usage = `Usage: sesame cleanup [--json]

Runs the cleanup the servers run every CLEANUP_INTERVAL_SECONDS, once, now:
deletes expired provider state (sessions, codes, tokens, grants), one-time
tokens that expired more than a day ago, and consumed or revoked one-time
tokens older than AUDIT_RETENTION_DAYS, audit log rows older than
AUDIT_LOG_RETENTION_DAYS and finished webhook deliveries older than
HOOK_DELIVERY_RETENTION_DAYS. On the embedded database it then vacuums
every table (it has no autovacuum). One run deletes at most 50,000 rows;
run it again while it says more are left. When a server is running the
cleanup at the same moment, nothing is done (exit 0).`;

function describe(report: CleanupReport): string {
  if (report.skipped) return 'Another instance is running the cleanup right now; nothing was done.';
  return [
    fields([
      ['Provider state', String(report.deleted.providerModels)],
      ['Expired tokens', String(report.deleted.expiredTokens)],
      ['Consumed tokens', String(report.deleted.consumedTokens)],
      ['Revoked tokens', String(report.deleted.revokedTokens)],
      ['Expired IP bans', String(report.deleted.expiredBans)],
      ['Expired sign-in mails (links and codes)', String(report.deleted.signInCodes)],
      ['Second-factor attempt counts', String(report.deleted.interactionAttempts)],
      ['Rate-limit counters', String(report.deleted.rateLimits)],
      ['Audit log rows', String(report.deleted.auditLogs)],
      ['Webhook deliveries', String(report.deleted.hookDeliveries)],
    ]),
    report.capped ? 'More rows are due: run it again.' : 'Nothing else is due.',
    ...(report.vacuumed.length ? [`Vacuumed ${report.vacuumed.length} tables (the embedded database has no autovacuum).`] : []),
  ].join('\n');
}

export const cleanupCommand: Command = {
  name: 'cleanup',
  summary: 'Purge expired and old tokens and provider state now',
  usage,
  async run(args, context) {
    parseOptions(args, {});
    const { config, db, core } = await context.services();
    const job = createCleanupJob({
      db,
      logger: context.logger,
      clock: core.clock,
      intervalMs: 0,
      retention: retentionOf(config),
    });
    const report = await job.runOnce();
    return { human: describe(report), json: report };
  },
};
