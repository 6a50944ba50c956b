import type { ApplicationService } from './applications/index.ts';
import type { Config } from './config.ts';

export const DEFAULT_BOOTSTRAP_CLIENT_ID = 'sesame-bootstrap';
export const DEMO_CLIENT_ID = 'sesame-demo';

export type BootstrapResult = {
  m2m: { id: string; generatedSecret?: string };
  demo?: { id: string; redirectUri: string };
};

/**
 * First-start data: the bootstrap machine-to-machine client (Management API
 * access) and, for dev setups, the demo application. Idempotent on every start;
 * a secret generated now is returned so it can be shown once.
 */
export async function ensureBootstrap(
  config: Config,
  applications: ApplicationService,
  demoClientId = DEMO_CLIENT_ID,
): Promise<BootstrapResult> {
  const m2m = await applications.ensure({
    id: config.bootstrapClient.id ?? DEFAULT_BOOTSTRAP_CLIENT_ID,
    name: 'Bootstrap machine-to-machine client',
    type: 'MachineToMachine',
    description: 'Created at first start; can call the Management API.',
    managementApiAccess: true,
    ...(config.bootstrapClient.secret ? { secret: config.bootstrapClient.secret } : {}),
  });
  const result: BootstrapResult = { m2m: { id: m2m.application.id, generatedSecret: m2m.generatedSecret } };
  if (config.devPages) {
    const redirectUri = `${config.baseUrl}/demo/callback`;
    await applications.ensure({
      id: demoClientId,
      name: 'Sesame Demo',
      type: 'Traditional',
      description: 'The dev-only demo app at /demo.',
      oidcClientMetadata: { redirectUris: [redirectUri], postLogoutRedirectUris: [`${config.baseUrl}/demo`] },
    });
    result.demo = { id: demoClientId, redirectUri };
  }
  return result;
}
