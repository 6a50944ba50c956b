import type { SigningKeyInfo } from '../oidc/keys.ts';
import { parseOptions } from './args.ts';
import { subcommands, type Command } from './context.ts';

const usage = `Usage:
  sesame keys rotate [--cookie] [--json]
  sesame keys list [--json]

  rotate            Add a new RS256 and ES256 signing key: they sign from now on;
                    earlier keys stay in the JWKS and keep verifying.
  rotate --cookie   Add a new cookie key instead; cookies signed with earlier
                    keys stay valid.
  list              List the signing keys; "current" ones sign new tokens.

Running servers poll the key set and pick up a rotation within 10 seconds;
no restart is needed. Retire a previous key through the Management API
(DELETE /api/configs/oidc/keys/:kid).`;

const PICKED_UP = 'Running servers pick this up within 10 seconds.';

function table(keys: SigningKeyInfo[]): string {
  const width = Math.max(3, ...keys.map((key) => key.kid.length));
  const header = `${'KID'.padEnd(width)}  ALG    CREATED                   STATE`;
  const rows = keys.map(
    (key) => `${key.kid.padEnd(width)}  ${key.alg.padEnd(5)}  ${key.createdAt.toISOString()}  ${key.current ? 'current' : 'previous'}`,
  );
  return [header, ...rows].join('\n');
}

export const keysCommand: Command = {
  name: 'keys',
  summary: 'Rotate or list signing and cookie keys',
  usage,
  run: subcommands('keys', {
    async rotate(args, context) {
      const { values } = parseOptions(args, { cookie: { type: 'boolean' } });
      const { keys } = await context.services();
      if (values.cookie) {
        await keys.rotateCookieKeys();
        return {
          human: `Added a cookie key: it signs cookies from now on; cookies signed with earlier keys stay valid.\n${PICKED_UP}`,
          json: { rotated: 'cookie' },
        };
      }
      const list = await keys.rotateSigningKeys();
      const added = list.filter((key) => key.current);
      return {
        human: [
          `Added signing keys ${added.map((key) => `${key.alg} ${key.kid}`).join(' and ')}: they sign from now on; earlier keys keep verifying.`,
          PICKED_UP,
          '',
          table(list),
        ].join('\n'),
        json: { rotated: 'signing', keys: list },
      };
    },

    async list(args, context) {
      parseOptions(args, {});
      const { keys } = await context.services();
      const list = await keys.list();
      return { human: table(list), json: list };
    },
  }),
};
