import type Router from '@koa/router';
import { z } from 'zod';
import { AppError } from '../../../../src/errors.ts';
import { route } from '../../../../src/http/guard.ts';
import { effectiveStatus, type TokenRecord } from '../../../../src/tokens/index.ts';
import type { ManagementApiDeps } from '../index.ts';
import {
  createdOneTimeTokenSchema,
  createOneTimeTokenSchema,
  idSchema,
  listOneTimeTokensQuery,
  oneTimeTokenSchema,
  toPage,
  totalHeader,
  verifyOneTimeTokenSchema,
} from '../schemas.ts';

export function registerOneTimeTokenRoutes(router: Router, { tokens, clock, limits, events }: ManagementApiDeps): void {
  const present = (record: TokenRecord) => ({ ...record, status: effectiveStatus(record, clock()) });
  const byId = z.strictObject({ id: idSchema });

  router.post(
    '/one-time-tokens',
    route(
      {
        body: createOneTimeTokenSchema,
        response: createdOneTimeTokenSchema,
        status: 201,
        errors: [400, 429],
        summary: 'Mint a one-time token',
        description:
          'The plaintext token is in this response only. `revokePrevious` revokes the email’s earlier active tokens. ' +
          'Rate-limited per client (RATE_LIMIT_TOKEN_MINT_PER_CLIENT): `X-RateLimit-*` headers, 429 `RATE_LIMITED` with `Retry-After` when over.',
      },
      async ({ body }, ctx) => {
        await limits.consume(ctx, 'tokenMint', { clientId: String(ctx.state.managementClientId) });
        const minted = await tokens.mint(body);
        return { body: { ...present(minted), token: minted.token } };
      },
    ),
  );

  router.get(
    '/one-time-tokens',
    route(
      { query: listOneTimeTokensQuery, response: z.array(oneTimeTokenSchema), status: 200, errors: [400], summary: 'List one-time tokens' },
      async ({ query }) => {
        const { items, total } = await tokens.list({ email: query.email, status: query.status }, toPage(query));
        return { body: items.map(present), headers: totalHeader(total) };
      },
    ),
  );

  router.post(
    '/one-time-tokens/verify',
    route(
      {
        body: verifyOneTimeTokenSchema,
        response: oneTimeTokenSchema,
        status: 200,
        errors: [400, 410],
        summary: 'Verify and consume a one-time token',
        description: 'Consumes the token atomically, with the same rules as sign-in: TOKEN_INVALID, TOKEN_EXPIRED or TOKEN_ALREADY_USED (410) otherwise.',
      },
      async ({ body }) => {
        try {
          const consumed = await tokens.consume(body);
          await events.publish('OneTimeToken.Consumed', { tokenId: consumed.id, email: consumed.email, source: 'management_api' });
          return { body: present(consumed) };
        } catch (error) {
          if (error instanceof AppError) await events.publish('OneTimeToken.Failed', { email: body.email, reason: error.code, source: 'management_api' });
          throw error;
        }
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

  router.put(
    '/one-time-tokens/:id/status',
    route(
      {
        params: byId,
        body: z.strictObject({ status: z.literal('revoked', { message: 'status can only be set to "revoked"; tokens cannot be reactivated' }) }),
        response: oneTimeTokenSchema,
        status: 200,
        errors: [400, 404],
        summary: 'Revoke a one-time token',
      },
      async ({ params }) => ({ body: present(await tokens.revoke(params.id)) }),
    ),
  );

  router.delete(
    '/one-time-tokens/:id',
    route({ params: byId, status: 204, errors: [404], summary: 'Delete a one-time token' }, async ({ params }) => {
      await tokens.delete(params.id);
      return {};
    }),
  );
}
