import type Router from '@koa/router';
import { z } from 'zod';
import { eventNames } from '../../../../src/events/index.ts';
import { route } from '../../../../src/http/guard.ts';
import type { ManagementApiDeps } from '../index.ts';
import { idSchema, ipSchema, isoDate, paginationQuery, toPage, totalHeader } from '../schemas.ts';

const instant = z
  .union([z.iso.datetime({ offset: true }), z.iso.date()])
  .transform((value) => new Date(value))
  .describe('An ISO 8601 date-time (with Z or an offset) or a date (midnight UTC)');

export const listLogsQuery = paginationQuery.extend({
  event: z.enum(eventNames).optional(),
  userId: idSchema.optional(),
  email: z.string().trim().toLowerCase().max(254).optional(),
  ip: ipSchema
    .optional()
    .describe('Events from this address, however it is written (`2001:DB8::1` finds `2001:db8::1`; `::ffff:192.0.2.1` finds `192.0.2.1`)'),
  applicationId: idSchema.optional().describe('The application (for Management API writes: the client) behind the event'),
  from: instant.optional().describe('Events at or after this instant'),
  to: instant.optional().describe('Events before this instant'),
});

export const auditLogSchema = z.object({
  id: z.string(),
  event: z.string(),
  createdAt: isoDate,
  result: z.enum(['success', 'failure']),
  userId: z.string().nullable(),
  email: z.string().nullable(),
  applicationId: z.string().nullable(),
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
  deviceFingerprint: z.string().nullable(),
  requestId: z.string().nullable(),
  data: z.record(z.string(), z.unknown()),
});

export const statsQuery = z.strictObject({
  from: z.iso.date().optional().describe('First UTC day (YYYY-MM-DD); default: 29 days before `to`'),
  to: z.iso.date().optional().describe('Last UTC day, included (YYYY-MM-DD); default: today'),
});

const byMethod = z.object({ total: z.number().int(), byMethod: z.record(z.string(), z.number().int()) });
const counts = {
  linksSent: z.number().int(),
  codesSent: z.number().int(),
  tokensMinted: z.number().int(),
  tokensConsumed: z.number().int(),
  tokenFailures: z.number().int(),
  signIns: byMethod,
  signInFailures: byMethod,
  mfaChallenges: z.number().int(),
  mfaFailures: z.number().int(),
  rateLimitHits: z.number().int(),
  ipBans: z.number().int(),
  lockouts: z.number().int(),
  usersCreated: z.number().int(),
  managementApiWrites: z.number().int(),
};
export const statsSchema = z.object({
  from: z.string(),
  to: z.string(),
  days: z.array(z.object({ day: z.string(), ...counts })),
  totals: z.object(counts),
});

export function registerAuditRoutes(router: Router, { audit }: ManagementApiDeps): void {
  router.get(
    '/logs',
    route(
      {
        query: listLogsQuery,
        response: z.array(auditLogSchema),
        status: 200,
        errors: [400],
        summary: 'List audit log entries',
        description: 'Newest first. Every security event and every Management API write, with IP, user agent and device fingerprint; never a token, code or password.',
      },
      async ({ query }) => {
        const { items, total } = await audit.list(
          { event: query.event, userId: query.userId, email: query.email, ip: query.ip, applicationId: query.applicationId, from: query.from, to: query.to },
          toPage(query),
        );
        return { body: items, headers: totalHeader(total) };
      },
    ),
  );

  router.get(
    '/stats',
    route(
      {
        query: statsQuery,
        response: statsSchema,
        status: 200,
        errors: [400],
        summary: 'Per-day counts of security events',
        description: 'One entry per UTC day from `from` to `to` (at most 366 days), counted from the audit log, and their totals.',
      },
      async ({ query }) => ({ body: await audit.stats(query) }),
    ),
  );
}
