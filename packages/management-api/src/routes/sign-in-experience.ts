import type Router from '@koa/router';
import { signInSettingsPatchSchema, signInSettingsSchema } from '../../../../src/settings/index.ts';
import { route } from '../../../../src/http/guard.ts';
import type { ManagementApiDeps } from '../index.ts';

/** The hosted sign-in's settings (Logto calls this resource the sign-in experience). */
export function registerSignInExperienceRoutes(router: Router, { settings }: ManagementApiDeps): void {
  router.get(
    '/sign-in-exp',
    route(
      {
        response: signInSettingsSchema,
        status: 200,
        summary: 'Get the sign-in settings',
        description: 'Enabled methods, registration, passwordless sign-up, link lifetime, auto-continue, branding and default language.',
      },
      async () => ({ body: await settings.get() }),
    ),
  );

  router.put(
    '/sign-in-exp',
    route(
      {
        body: signInSettingsPatchSchema,
        response: signInSettingsSchema,
        status: 200,
        errors: [400, 415],
        summary: 'Change the sign-in settings',
        description:
          'Send any subset of the settings (nested objects too): fields left out keep their values. Answers the complete settings. Other instances see the change at once.',
      },
      async ({ body }) => ({ body: await settings.update(body) }),
    ),
  );
}
