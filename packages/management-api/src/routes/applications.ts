import type Router from '@koa/router';
import { z } from 'zod';
import { route } from '../../../../src/http/guard.ts';
import type { ManagementApiDeps } from '../index.ts';
import {
  applicationSchema,
  createApplicationSchema,
  createdApplicationSchema,
  idSchema,
  listApplicationsQuery,
  toPage,
  totalHeader,
  updateApplicationSchema,
} from '../schemas.ts';

export function registerApplicationRoutes(router: Router, { applications }: ManagementApiDeps): void {
  const byId = z.strictObject({ id: idSchema });

  router.post(
    '/applications',
    route(
      {
        body: createApplicationSchema,
        response: createdApplicationSchema,
        status: 201,
        errors: [400],
        summary: 'Create an application',
        description: 'Traditional and MachineToMachine applications get a secret, returned here and by secret rotation only.',
      },
      async ({ body }) => {
        const { application, secret } = await applications.create(body);
        return { body: { ...application, secret: secret ?? null } };
      },
    ),
  );

  router.get(
    '/applications',
    route({ query: listApplicationsQuery, response: z.array(applicationSchema), status: 200, errors: [400], summary: 'List applications' }, async ({ query }) => {
      const { items, total } = await applications.list({ type: query.type }, toPage(query));
      return { body: items, headers: totalHeader(total) };
    }),
  );

  router.get(
    '/applications/:id',
    route({ params: byId, response: applicationSchema, status: 200, errors: [404], summary: 'Get an application' }, async ({ params }) => ({
      body: await applications.mustExist(params.id),
    })),
  );

  router.patch(
    '/applications/:id',
    route(
      {
        params: byId,
        body: updateApplicationSchema,
        response: applicationSchema,
        status: 200,
        errors: [400, 404],
        summary: 'Update an application',
        description: '`managementApiAccess` (MachineToMachine only) decides whether the app may call this API; taking it away takes effect at once.',
      },
      async ({ params, body }) => ({ body: await applications.update(params.id, body) }),
    ),
  );

  router.delete(
    '/applications/:id',
    route({ params: byId, status: 204, errors: [404], summary: 'Delete an application' }, async ({ params }) => {
      await applications.delete(params.id);
      return {};
    }),
  );

  router.post(
    '/applications/:id/secret',
    route(
      {
        params: byId,
        response: createdApplicationSchema,
        status: 200,
        errors: [400, 404],
        summary: 'Rotate the application’s secret',
        description: 'The new secret replaces the old one at once and is shown only in this response.',
      },
      async ({ params }) => {
        const { application, secret } = await applications.rotateSecret(params.id);
        return { body: { ...application, secret } };
      },
    ),
  );
}
