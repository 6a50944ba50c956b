import { applicationTypes, type ApplicationType } from '../applications/index.ts';
import { parseOptions, requireOption, UsageError } from './args.ts';
import { fields, subcommands, type Command } from './context.ts';

const usage = `Usage: sesame apps create --name NAME --type TYPE [options] [--json]

  --name NAME                        Shown on the consent and sign-in pages.
  --type TYPE                        ${applicationTypes.join(', ')}.
  --redirect-uri URI                 Where codes are sent (repeat for several).
  --post-logout-redirect-uri URI     Where sign-out may return (repeat for several).
  --management-api-access            Let this MachineToMachine app call the Management API.

Traditional and MachineToMachine applications get a client secret: it is
printed now and never again.`;

function parseType(value: string): ApplicationType {
  const type = applicationTypes.find((candidate) => candidate.toLowerCase() === value.toLowerCase());
  if (!type) throw new UsageError(`--type must be one of ${applicationTypes.join(', ')}, not '${value}'.`);
  return type;
}

export const appsCommand: Command = {
  name: 'apps',
  summary: 'Register an application (prints its secret once)',
  usage,
  run: subcommands('apps', {
    async create(args, context) {
      const { values } = parseOptions(args, {
        name: { type: 'string' },
        type: { type: 'string' },
        'redirect-uri': { type: 'string', multiple: true },
        'post-logout-redirect-uri': { type: 'string', multiple: true },
        'management-api-access': { type: 'boolean' },
      });
      const name = requireOption(values.name?.trim(), '--name');
      const type = parseType(requireOption(values.type, '--type'));
      const { core } = await context.services();
      const { application, secret } = await core.applications.create({
        name,
        type,
        oidcClientMetadata: {
          redirectUris: values['redirect-uri'] ?? [],
          postLogoutRedirectUris: values['post-logout-redirect-uri'] ?? [],
        },
        managementApiAccess: values['management-api-access'] ?? false,
      });
      const rows: Array<[string, string]> = [['id', application.id]];
      if (secret) rows.push(['secret', secret]);
      const { redirectUris, postLogoutRedirectUris } = application.oidcClientMetadata;
      if (redirectUris.length > 0) rows.push(['redirect URIs', redirectUris.join(' ')]);
      if (postLogoutRedirectUris.length > 0) rows.push(['post-logout URIs', postLogoutRedirectUris.join(' ')]);
      if (application.managementApiAccess) rows.push(['Management API', 'allowed']);
      const human = [
        `Created ${application.type} application "${application.name}".`,
        fields(rows, '  '),
        ...(secret ? ['The secret is shown only now: store it.'] : []),
      ].join('\n');
      return { human, json: { ...application, secret: secret ?? null } };
    },
  }),
};
