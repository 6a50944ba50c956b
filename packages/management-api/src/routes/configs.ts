import type Router from '@koa/router';
import { z } from 'zod';
import { route } from '../../../../src/http/guard.ts';
import type { ManagementApiDeps } from '../index.ts';

const signingKeySchema = z.object({
  kid: z.string(),
  alg: z.string(),
  createdAt: z
    .date()
    .transform((date) => date.toISOString())
    .pipe(z.iso.datetime()),
  current: z.boolean(),
});

export function registerConfigRoutes(router: Router, { keys }: ManagementApiDeps): void {
  router.get(
    '/configs/oidc/keys',
    route(
      { response: z.array(signingKeySchema), status: 200, summary: 'List signing keys', description: 'The public keys are at /oidc/jwks; private keys never leave Sesame.' },
      async () => ({ body: await keys.list() }),
    ),
  );

  router.post(
    '/configs/oidc/keys/rotate',
    route(
      {
        response: z.array(signingKeySchema),
        status: 201,
        summary: 'Rotate the signing keys',
        description:
          'Adds a new RS256 and ES256 key that sign from now on. Previous keys stay in the JWKS, so tokens they signed keep verifying until the keys are retired. Every instance picks up the change within its poll interval.',
      },
      async () => ({ body: await keys.rotateSigningKeys() }),
    ),
  );

  router.delete(
    '/configs/oidc/keys/:kid',
    route(
      {
        params: z.strictObject({ kid: z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/) }),
        status: 204,
        errors: [400, 404],
        summary: 'Retire a previous signing key',
        description: 'The key leaves the JWKS: tokens it signed stop verifying. The current key of an algorithm cannot be retired.',
      },
      async ({ params }) => {
        await keys.retire(params.kid);
        return {};
      },
    ),
  );

  router.post(
    '/configs/oidc/cookie-keys/rotate',
    route(
      { status: 204, summary: 'Rotate the cookie keys', description: 'A new key signs cookies from now on; cookies signed with older keys stay valid.' },
      async () => {
        await keys.rotateCookieKeys();
        return {};
      },
    ),
  );
}
