import type Router from '@koa/router';
import { z } from 'zod';
import { route } from '../../../../src/http/guard.ts';
import { hookEvents } from '../../../../src/hooks/index.ts';
import type { ManagementApiDeps } from '../index.ts';
import { idSchema, isoDate, paginationQuery, toPage, totalHeader } from '../schemas.ts';

const hookUrl = z
  .url({ protocol: /^https?$/, message: 'url must be an absolute http(s) URL' })
  .max(2048)
  // fetch refuses URLs with credentials; deliveries are authenticated by their signature instead.
  .refine((value) => !/^[a-z]+:\/\/[^/?#]*@/i.test(value), 'url must not contain a user name or password');
const events = z.array(z.enum(hookEvents)).min(1, 'subscribe to at least one event').max(hookEvents.length * 2);

export const createHookSchema = z.strictObject({
  name: z.string().trim().min(1).max(256),
  url: hookUrl,
  events,
  enabled: z.boolean().optional(),
});

export const updateHookSchema = z
  .strictObject({ name: z.string().trim().min(1).max(256).optional(), url: hookUrl.optional(), events: events.optional(), enabled: z.boolean().optional() })
  .refine((value) => Object.keys(value).length > 0, 'give at least one field to change');

export const hookSchema = z.object({
  id: z.string(),
  name: z.string(),
  url: z.string(),
  events: z.array(z.string()),
  enabled: z.boolean(),
  createdAt: isoDate,
  updatedAt: isoDate,
});

export const hookWithSecretSchema = hookSchema.extend({ secret: z.string() });

export const deliverySchema = z.object({
  id: z.string(),
  hookId: z.string(),
  event: z.string(),
  status: z.enum(['pending', 'succeeded', 'failed']),
  attempts: z.number().int(),
  responseStatus: z.number().int().nullable(),
  error: z.string().nullable(),
  nextAttemptAt: isoDate.nullable(),
  lastAttemptAt: isoDate.nullable(),
  createdAt: isoDate,
  completedAt: isoDate.nullable(),
});

export function registerHookRoutes(router: Router, { hooks }: ManagementApiDeps): void {
  const byId = z.strictObject({ id: idSchema });

  router.post(
    '/hooks',
    route(
      {
        body: createHookSchema,
        response: hookWithSecretSchema,
        status: 201,
        errors: [400],
        summary: 'Create a webhook',
        description: 'The signing `secret` is in this answer only (it is sealed at rest). Deliveries are signed with it: see the `Sesame-Signature` header.',
      },
      async ({ body }) => ({ body: await hooks.create(body) }),
    ),
  );

  router.get(
    '/hooks',
    route({ query: paginationQuery, response: z.array(hookSchema), status: 200, errors: [400], summary: 'List webhooks' }, async ({ query }) => {
      const { items, total } = await hooks.list(toPage(query));
      return { body: items, headers: totalHeader(total) };
    }),
  );

  router.get(
    '/hooks/:id',
    route({ params: byId, response: hookSchema, status: 200, errors: [404], summary: 'Get a webhook' }, async ({ params }) => ({
      body: await hooks.get(params.id),
    })),
  );

  router.patch(
    '/hooks/:id',
    route({ params: byId, body: updateHookSchema, response: hookSchema, status: 200, errors: [400, 404], summary: 'Update a webhook' }, async ({ params, body }) => ({
      body: await hooks.update(params.id, body),
    })),
  );

  router.delete(
    '/hooks/:id',
    route({ params: byId, status: 204, errors: [404], summary: 'Delete a webhook and its delivery log' }, async ({ params }) => {
      await hooks.delete(params.id);
      return {};
    }),
  );

  router.post(
    '/hooks/:id/secret',
    route(
      { params: byId, response: hookWithSecretSchema, status: 200, errors: [404], summary: 'Rotate a webhook’s signing secret', description: 'The new `secret` is in this answer only; the old one stops signing at once.' },
      async ({ params }) => ({ body: await hooks.rotateSecret(params.id) }),
    ),
  );

  router.get(
    '/hooks/:id/deliveries',
    route(
      {
        params: byId,
        query: paginationQuery,
        response: z.array(deliverySchema),
        status: 200,
        errors: [400, 404],
        summary: 'List a webhook’s deliveries',
        description: 'Newest first: status (`pending`, `succeeded`, `failed`), attempts, the last response status or error, and when the next attempt is due.',
      },
      async ({ params, query }) => {
        const { items, total } = await hooks.deliveries(params.id, toPage(query));
        return { body: items, headers: totalHeader(total) };
      },
    ),
  );
}
