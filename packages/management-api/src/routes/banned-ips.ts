import type Router from '@koa/router';
import { z } from 'zod';
import { AppError } from '../../../../src/errors.ts';
import { clientIp } from '../../../../src/http/client-ip.ts';
import { route } from '../../../../src/http/guard.ts';
import type { ManagementApiDeps } from '../index.ts';
import { ipSchema, isoDate, paginationQuery, toPage, totalHeader } from '../schemas.ts';

const banSchema = z.object({
  ip: z.string(),
  reason: z.string(),
  source: z.enum(['manual', 'automatic']).describe('`automatic`: after repeated rate-limit refusals.'),
  createdBy: z.string().nullable().describe('The client that made a manual ban.'),
  createdAt: isoDate,
  expiresAt: isoDate.nullable().describe('Null: until lifted.'),
});

const MAX_BAN_SECONDS = 10 * 366 * 24 * 3600;

export function registerBannedIpRoutes(router: Router, { bans, events }: ManagementApiDeps): void {
  const byIp = z.strictObject({ ip: ipSchema });

  router.get(
    '/banned-ips',
    route(
      { query: paginationQuery, response: z.array(banSchema), status: 200, summary: 'List active IP bans', description: 'Newest first.' },
      async ({ query }) => {
        const { items, total } = await bans.list(toPage(query));
        return { body: items, headers: totalHeader(total) };
      },
    ),
  );

  router.post(
    '/banned-ips',
    route(
      {
        body: z.strictObject({
          ip: ipSchema,
          reason: z.string().trim().min(1).max(500),
          expiresIn: z.number().int().min(60, 'expiresIn must be at least 60 seconds').max(MAX_BAN_SECONDS).optional(),
        }),
        response: banSchema,
        status: 201,
        summary: 'Ban an IP address',
        description:
          'Requests from the address get 403 `IP_BANNED` on every surface but health and metrics, on every instance within BAN_CACHE_SECONDS. ' +
          'Without `expiresIn` (seconds) the ban lasts until lifted; banning a banned address replaces its ban. ' +
          'The address of the request itself cannot be banned (400), so a client cannot lock itself out.',
      },
      async ({ body }, ctx) => {
        if (body.ip === clientIp(ctx)) throw new AppError('INVALID_INPUT', 'This is the address this request comes from: banning it would lock this client out.');
        const ban = await bans.ban({ ...body, createdBy: String(ctx.state.managementClientId) });
        await events.publish('Ip.Banned', { ip: ban.ip, reason: ban.reason, expiresAt: ban.expiresAt?.toISOString() ?? null, manual: true });
        return { body: ban };
      },
    ),
  );

  router.get(
    '/banned-ips/:ip',
    route({ params: byIp, response: banSchema, status: 200, errors: [404], summary: 'Get the active ban of an IP address' }, async ({ params }) => {
      const ban = await bans.get(params.ip);
      if (!ban) throw new AppError('NOT_FOUND', 'This address is not banned.');
      return { body: ban };
    }),
  );

  router.delete(
    '/banned-ips/:ip',
    route({ params: byIp, status: 204, errors: [404], summary: 'Lift the ban of an IP address' }, async ({ params }) => {
      if (!(await bans.unban(params.ip))) throw new AppError('NOT_FOUND', 'This address is not banned.');
      return {};
    }),
  );
}
