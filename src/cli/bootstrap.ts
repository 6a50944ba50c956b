import { ensureBootstrap } from '../bootstrap.ts';
import { parseOptions } from './args.ts';
import { CliError, fields, type Command } from './context.ts';

const usage = `Usage: sesame bootstrap [--rotate-secret] [--json]

Ensures the bootstrap machine-to-machine client (Management API access) exists,
as the server does at every start, and prints its id. Its secret is printed
only when it is generated now (the first time), or with --rotate-secret, which
replaces it with a new one (the old one stops working at once).

Outside production it also ensures the demo application, with redirect URIs
under BASE_URL.`;

export const bootstrapCommand: Command = {
  name: 'bootstrap',
  summary: 'Ensure the bootstrap M2M client (prints its secret once)',
  usage,
  async run(args, context) {
    const { values } = parseOptions(args, { 'rotate-secret': { type: 'boolean' } });
    const config = context.config();
    if (values['rotate-secret'] && config.bootstrapClient.secret) {
      throw new CliError(
        'SESAME_BOOTSTRAP_CLIENT_SECRET is set, and every start sets the client secret back to it: change the variable instead of rotating.',
      );
    }
    const { core } = await context.services();
    const result = await ensureBootstrap(config, core.applications);
    let secret = result.m2m.generatedSecret;
    if (values['rotate-secret']) secret = (await core.applications.rotateSecret(result.m2m.id)).secret;

    const rows: Array<[string, string]> = [['client id', result.m2m.id]];
    if (secret) rows.push(['secret', secret]);
    else if (config.bootstrapClient.secret) rows.push(['secret', 'from SESAME_BOOTSTRAP_CLIENT_SECRET']);
    else rows.push(['secret', 'not shown (it was shown once when created; --rotate-secret makes a new one)']);
    if (result.demo) rows.push(['demo app', `${result.demo.id} (redirects to ${result.demo.redirectUri})`]);
    const human = [
      'Bootstrap machine-to-machine client (Management API access):',
      fields(rows, '  '),
      ...(secret ? ['The secret is shown only now: store it.'] : []),
    ].join('\n');
    return { human, json: { id: result.m2m.id, secret: secret ?? null, demo: result.demo ?? null } };
  },
};
