import { AppError } from '../errors.ts';
import { emailSchema } from '../http/guard.ts';
import { normalizeEmail } from '../tokens/index.ts';
import type { User } from '../users/index.ts';
import { parseOptions, requireOption, UsageError } from './args.ts';
import { CliError, fields, subcommands, type CliContext, type Command, type Services } from './context.ts';

const usage = `Usage:
  sesame users create --email EMAIL [--name NAME] [--password-stdin] [--json]
  sesame users suspend ID|EMAIL [--json]
  sesame users unsuspend ID|EMAIL [--json]

  create      Create a user (the email is verified at their first sign-in).
              --password-stdin reads a password (8-256 characters) from stdin;
              a password is never taken as an argument (shell history, ps).
  suspend     Block sign-in, end the user's sessions and revoke their tokens.
  unsuspend   Allow sign-in again.`;

// The Management API's password rule (packages/management-api/src/schemas.ts).
const PASSWORD_LENGTH = { min: 8, max: 256 };

export function parseEmail(value: string, flag = '--email'): string {
  const parsed = emailSchema.safeParse(value);
  if (!parsed.success) throw new UsageError(`${flag} must be a valid email address, not '${value}'.`);
  return parsed.data;
}

/** The password as piped in; one trailing newline (from echo or a file) is not part of it. */
async function passwordFromStdin(context: CliContext): Promise<string> {
  const password = (await context.readStdin()).replace(/\r?\n$/, '');
  if (password.length === 0) throw new CliError('--password-stdin: no password on stdin.');
  if (password.length < PASSWORD_LENGTH.min || password.length > PASSWORD_LENGTH.max) {
    throw new CliError(`--password-stdin: the password must be ${PASSWORD_LENGTH.min} to ${PASSWORD_LENGTH.max} characters.`);
  }
  return password;
}

/** Finds a user by id, or by email when the reference contains an @. */
async function findUser({ core }: Services, reference: string): Promise<User> {
  const user = reference.includes('@') ? await core.users.findByEmail(normalizeEmail(reference)) : await core.users.findById(reference);
  if (!user) throw new AppError('NOT_FOUND', reference.includes('@') ? `No user has the email ${reference}.` : `No user has the id ${reference}.`);
  return user;
}

const describe = (user: User) => (user.primaryEmail ? `${user.primaryEmail} (${user.id})` : user.id);

function setSuspended(isSuspended: boolean) {
  return async (args: string[], context: CliContext) => {
    const { positionals } = parseOptions(args, {}, { min: 1, max: 1, name: 'the user (an id or an email)' });
    const services = await context.services();
    const user = await findUser(services, positionals[0]!);
    const updated = await services.core.userService.setSuspended(user.id, isSuspended);
    const human = isSuspended
      ? `Suspended ${describe(updated)}: they cannot sign in, and their sessions were ended.`
      : `Unsuspended ${describe(updated)}: they can sign in again.`;
    return { human, json: updated };
  };
}

export const usersCommand: Command = {
  name: 'users',
  summary: 'Create, suspend and unsuspend users',
  usage,
  run: subcommands('users', {
    async create(args, context) {
      const { values } = parseOptions(args, {
        email: { type: 'string' },
        name: { type: 'string' },
        'password-stdin': { type: 'boolean' },
      });
      const email = parseEmail(requireOption(values.email, '--email'));
      const name = values.name?.trim() || null;
      // Read before opening the database: a missing pipe fails fast.
      const password = values['password-stdin'] ? await passwordFromStdin(context) : undefined;
      const { core } = await context.services();
      const user = await core.userService.create({ primaryEmail: email, name, password }, 'cli');
      const human = [
        `Created user ${user.id}.`,
        fields(
          [
            ['email', user.primaryEmail ?? '-'],
            ['name', user.name ?? '-'],
            ['password', user.hasPassword ? 'set' : 'none (signs in with links)'],
          ],
          '  ',
        ),
      ].join('\n');
      return { human, json: user };
    },
    suspend: setSuspended(true),
    unsuspend: setSuspended(false),
  }),
};
