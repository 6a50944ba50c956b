import { parseArgs, type ParseArgsConfig } from 'node:util';

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/** The command line is wrong: the CLI exits with 2 and points at the help. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The entry point answers --help before a command runs (and strips --json and --debug). */
const commonOptions = {
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionsConfig;

/**
 * Parses one command's arguments strictly: an unknown option, a missing value
 * or an extra positional is a UsageError, never a guess.
 */
export function parseOptions<const O extends OptionsConfig>(
  args: string[],
  options: O,
  positionals: { min?: number; max?: number; name?: string } = {},
) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...commonOptions, ...options }, allowPositionals: true, strict: true });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError(firstSentence((error as Error).message));
    throw error;
  }
  const { min = 0, max = 0, name = 'argument' } = positionals;
  if (parsed.positionals.length < min) throw new UsageError(`Missing ${name}.`);
  if (parsed.positionals.length > max) throw new UsageError(`Unexpected argument '${parsed.positionals[max]}'.`);
  return parsed;
}

// node:util's messages go on with advice about `--`; the first sentence names the problem.
const firstSentence = (message: string) => message.replace(/\. .*$/s, '.').replace(/([^.])$/, '$1.');

export function requireOption<T>(value: T | undefined, flag: string): T {
  if (value === undefined || value === '') throw new UsageError(`Missing ${flag}.`);
  return value;
}

export function parseInteger(value: string, flag: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} must be a whole number, not '${value}'.`);
  return Number.parseInt(value, 10);
}

/** Where global flags are recognised: anywhere before a `--` terminator. */
export function hasFlag(args: string[], ...flags: string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((arg) => flags.includes(arg));
}
