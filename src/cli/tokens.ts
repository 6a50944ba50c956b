import { parseInteger, parseOptions, requireOption } from './args.ts';
import { fields, subcommands, type Command } from './context.ts';
import { parseEmail } from './users.ts';

const usage = `Usage: sesame tokens mint --email EMAIL [--expires-in SECONDS] [--org ID]... [--json]

  --email EMAIL          Who may redeem the token (compared case-insensitively).
  --expires-in SECONDS   Lifetime, 60 to 604800 (default 600).
  --org ID               Make the user a member of this organization when they
                         sign in with the token (repeat for several).

Prints the token id, the token (shown only now: only its hash is stored) and
its expiry. Put the token in a link to your app's landing page.`;

export const tokensCommand: Command = {
  name: 'tokens',
  summary: 'Mint a one-time sign-in token',
  usage,
  run: subcommands('tokens', {
    async mint(args, context) {
      const { values } = parseOptions(args, {
        email: { type: 'string' },
        'expires-in': { type: 'string' },
        org: { type: 'string', multiple: true },
      });
      const email = parseEmail(requireOption(values.email, '--email'));
      const expiresIn = values['expires-in'] === undefined ? undefined : parseInteger(values['expires-in'], '--expires-in');
      const organizationIds = values.org ?? [];
      const { core } = await context.services();
      const minted = await core.tokens.mint({
        email,
        expiresIn,
        context: organizationIds.length > 0 ? { jitOrganizationIds: organizationIds } : undefined,
      });
      const seconds = Math.round((minted.expiresAt.getTime() - minted.createdAt.getTime()) / 1000);
      const human = fields([
        ['id', minted.id],
        ['token', minted.token],
        ['expires', `${minted.expiresAt.toISOString()} (in ${seconds} s)`],
      ]);
      return {
        human,
        json: { id: minted.id, email: minted.email, token: minted.token, expiresAt: minted.expiresAt, context: minted.context },
      };
    },
  }),
};
