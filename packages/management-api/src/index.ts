import Router from '@koa/router';
import type { JSONWebKeySet } from 'jose';
import { z } from 'zod';
import type { ApplicationService } from '../../../src/applications/index.ts';
import { AppError } from '../../../src/errors.ts';
import { route } from '../../../src/http/guard.ts';
import { effectiveStatus, type TokenRecord, type TokenService } from '../../../src/tokens/index.ts';
import { requireManagementToken } from './auth.ts';
import {
  createApplicationSchema,
  createdApplicationSchema,
  createdOneTimeTokenSchema,
  createOneTimeTokenSchema,
  idSchema,
  oneTimeTokenSchema,
} from './schemas.ts';

export type ManagementApiDeps = {
  issuer: string;
  resource: string;
  scope: string;
  jwks: () => JSONWebKeySet;
  tokens: TokenService;
  applications: ApplicationService;
  clock: () => Date;
};

/** The Management API under /api: machine-to-machine clients with the `all` scope only. */
export function createManagementApiRouter(deps: ManagementApiDeps): Router {
  const { tokens, applications, clock } = deps;
  const router = new Router({ prefix: '/api' });
  router.use(requireManagementToken({ issuer: deps.issuer, audience: deps.resource, scope: deps.scope, jwks: deps.jwks }));

  const presentToken = (record: TokenRecord) => ({ ...record, status: effectiveStatus(record, clock()) });
  const byId = z.strictObject({ id: idSchema });

  router.post(
    '/one-time-tokens',
    route({ body: createOneTimeTokenSchema, response: createdOneTimeTokenSchema, status: 201, errors: [400, 401, 403] }, async ({ body }) => {
      const minted = await tokens.mint(body);
      return { body: { ...presentToken(minted), token: minted.token } };
    }),
  );

  router.get(
    '/one-time-tokens/:id',
    route({ params: byId, response: oneTimeTokenSchema, status: 200, errors: [401, 403, 404] }, async ({ params }) => {
      const record = await tokens.get(params.id);
      if (!record) throw new AppError('NOT_FOUND', 'No one-time token has this id.');
      return { body: presentToken(record) };
    }),
  );

  router.post(
    '/applications',
    route({ body: createApplicationSchema, response: createdApplicationSchema, status: 201, errors: [400, 401, 403] }, async ({ body }) => {
      const { application, secret } = await applications.create(body);
      return { body: { ...application, secret: secret ?? null } };
    }),
  );

  return router;
}
