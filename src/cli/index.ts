import { pathToFileURL } from 'node:url';
import { ConfigError } from '../config.ts';
import { AppError } from '../errors.ts';
import { appsCommand } from './apps.ts';
import { hasFlag, UsageError } from './args.ts';
import { bansCommand } from './bans.ts';
import { bootstrapCommand } from './bootstrap.ts';
import { cleanupCommand } from './cleanup.ts';
import { createCliContext, type Command } from './context.ts';
import { doctorCommand } from './doctor.ts';
import { keysCommand } from './keys.ts';
import { migrateCommand } from './migrate.ts';
import { tokensCommand } from './tokens.ts';
import { usersCommand } from './users.ts';

/**
 * `sesame <command> …`: operator tasks over the same database as the server,
 * without HTTP. Exit codes: 0 success, 1 failure, 2 usage error.
 */
const commands: Command[] = [migrateCommand, appsCommand, usersCommand, tokensCommand, keysCommand, bansCommand, cleanupCommand, bootstrapCommand, doctorCommand];

const usage = `Usage: sesame <command> [options]

Commands:
${commands.map((command) => `  ${command.name.padEnd(10)} ${command.summary}`).join('\n')}

Options for every command:
  --json      Print exactly one JSON document to stdout (for scripts).
  --debug     Show stack traces and debug logs on stderr.
  -h, --help  Show a command's usage: sesame <command> --help.

The configuration comes from the same environment as the server (DATABASE_URL,
DATA_DIR, SESAME_SECRET, BASE_URL, …), so the CLI works on the server's data.
Every command except migrate and doctor first migrates the database to the
latest version and creates missing keys, as the server does at start.

Exit codes: 0 success, 1 failure, 2 usage error.`;

export type CliResult = { exitCode: number; stdout: string; stderr: string };

export type CliIo = { env: NodeJS.ProcessEnv; readStdin: () => Promise<string> };

/** Runs one command line; never throws and never exits, so it can be driven in-process too. */
export async function runCli(argv: string[], io: CliIo): Promise<CliResult> {
  const json = hasFlag(argv, '--json');
  const debug = hasFlag(argv, '--debug');
  const [name, ...args] = withoutGlobalFlags(argv);
  const command = commands.find((candidate) => candidate.name === name);

  if (!name) return { exitCode: 2, stdout: '', stderr: `${usage}\n` };
  if (['--help', '-h', 'help'].includes(name)) {
    const about = commands.find((candidate) => candidate.name === args[0]);
    return { exitCode: 0, stdout: `${about?.usage ?? usage}\n`, stderr: '' };
  }
  if (command && hasFlag(args, '--help', '-h')) return { exitCode: 0, stdout: `${command.usage}\n`, stderr: '' };

  const context = createCliContext({ env: io.env, debug, readStdin: io.readStdin });
  try {
    if (!command) throw new UsageError(`Unknown command '${name}'.`);
    const output = await command.run(args, context);
    const stdout = json ? `${JSON.stringify(output.json, null, 2)}\n` : `${output.human}\n`;
    return { exitCode: output.exitCode ?? 0, stdout, stderr: '' };
  } catch (error) {
    const usageError = error instanceof UsageError;
    const help = command ? `sesame ${command.name} --help` : 'sesame --help';
    const message = usageError ? `${error.message} See '${help}'.` : describeError(error);
    const code = usageError ? 'USAGE' : error instanceof ConfigError ? 'INVALID_CONFIG' : 'FAILED';
    const body = error instanceof AppError ? error.toBody() : { code, message };
    return {
      exitCode: usageError ? 2 : 1,
      stdout: json ? `${JSON.stringify({ error: body }, null, 2)}\n` : '',
      stderr: `sesame: ${message}\n${debug && error instanceof Error && error.stack ? `${error.stack}\n` : ''}`,
    };
  } finally {
    await context.close().catch(() => undefined);
  }
}

/** --json and --debug may stand anywhere (before a `--`); the commands never see them. */
function withoutGlobalFlags(argv: string[]): string[] {
  const end = argv.indexOf('--');
  const flags = ['--json', '--debug'];
  return argv.filter((arg, index) => !(flags.includes(arg) && (end === -1 || index < end)));
}

/** One line: AppError messages as they are, the issues of a ConfigError joined, else the first line. */
function describeError(error: unknown): string {
  if (error instanceof ConfigError) return `Invalid configuration: ${error.issues.join('; ')}`;
  if (error instanceof Error) return error.message.split('\n')[0] || error.name;
  return String(error);
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('Reading from stdin; end with Ctrl-D (the input is echoed: prefer a pipe).\n');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const write = (stream: NodeJS.WriteStream, text: string) =>
  new Promise<void>((resolve) => (text ? stream.write(text, () => resolve()) : resolve()));

/** The process entry: runs argv, writes the output and exits with the command's code. */
export async function main(argv = process.argv.slice(2)): Promise<never> {
  const result = await runCli(argv, { env: process.env, readStdin });
  await write(process.stdout, result.stdout);
  await write(process.stderr, result.stderr);
  // Exit now: a pool or a mail transport must not keep a finished command alive.
  process.exit(result.exitCode);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
