import type Router from '@koa/router';
import { z } from 'zod';
import { AppError } from '../../../../src/errors.ts';
import { route } from '../../../../src/http/guard.ts';
import { effectiveStatus, type TokenRecord } from '../../../../src/tokens/index.ts';
import type { ManagementApiDeps } from '../index.ts';
import { createdOneTimeTokenSchema, createOneTimeTokenSchema, idSchema, oneTimeTokenSchema } from '../schemas.ts';

export function registerOneTimeTokenRoutes(router: Router, { tokens, clock }: ManagementApiDeps): void {
  const present = (record: TokenRecord) => ({ ...record, status: effectiveStatus(record, clock()) });
  const byId = z.strictObject({ id: idSchema });

  router.post(
    '/one-time-tokens',
    route(
      { body: createOneTimeTokenSchema, response: createdOneTimeTokenSchema, status: 201, errors: [400], summary: 'Mint a one-time token' },
      async ({ body }) => {
        const minted = await tokens.mint(body);
        return { body: { ...present(minted), token: minted.token } };
      },
    ),
  );

  router.get(
    '/one-time-tokens/:id',
    route({ params: byId, response: oneTimeTokenSchema, status: 200, errors: [404], summary: 'Get a one-time token' }, async ({ params }) => {
      const record = await tokens.get(params.id);
      if (!record) throw new AppError('NOT_FOUND', 'No one-time token has this id.');
      return { body: present(record) };
    }),
  );
}
