import type Router from '@koa/router';
import { route } from '../../../../src/http/guard.ts';
import type { ManagementApiDeps } from '../index.ts';
import { createApplicationSchema, createdApplicationSchema } from '../schemas.ts';

export function registerApplicationRoutes(router: Router, { applications }: ManagementApiDeps): void {
  router.post(
    '/applications',
    route(
      { body: createApplicationSchema, response: createdApplicationSchema, status: 201, errors: [400], summary: 'Create an application' },
      async ({ body }) => {
        const { application, secret } = await applications.create(body);
        return { body: { ...application, secret: secret ?? null } };
      },
    ),
  );
}
