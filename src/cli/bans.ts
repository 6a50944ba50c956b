import { createBanRepository, createBanService, type BanRecord } from '../bans/index.ts';
import { canonicalIp } from '../http/client-ip.ts';
import { parseInteger, parseOptions, requireOption, UsageError } from './args.ts';
import { CliError, subcommands, type CliContext, type Command } from './context.ts';

const usage = `Usage:
  sesame bans list [--json]
  sesame bans add <ip> --reason TEXT [--expires-in SECONDS] [--json]
  sesame bans remove <ip> [--json]

  list      The active IP bans, newest first (manual and automatic).
  add       Ban one IPv4 or IPv6 address; without --expires-in, until removed.
  remove    Lift an address's ban, e.g. when an administrator or a proxy
            address was banned and the Management API cannot be reached.

Running servers apply a change within BAN_CACHE_SECONDS (5 s by default).`;

const PICKED_UP = 'Running servers apply this within BAN_CACHE_SECONDS.';

async function banService(context: CliContext) {
  const { db, core } = await context.services();
  return createBanService({ repository: createBanRepository(db), clock: core.clock, cacheMs: 0, logger: context.logger });
}

function address(value: string | undefined): string {
  const ip = canonicalIp(requireOption(value, '<ip>'));
  if (!ip) throw new UsageError(`'${value}' is not one IPv4 or IPv6 address.`);
  return ip;
}

const line = (ban: BanRecord) =>
  `${ban.ip.padEnd(39)}  ${ban.source.padEnd(9)}  ${ban.expiresAt ? `until ${ban.expiresAt.toISOString()}` : 'until removed'.padEnd(30)}  ${ban.reason}`;

export const bansCommand: Command = {
  name: 'bans',
  summary: 'List, add or remove IP bans',
  usage,
  run: subcommands('bans', {
    async list(args, context) {
      parseOptions(args, {});
      const { items } = await (await banService(context)).list({ page: 1, pageSize: 1000 });
      return { human: items.length > 0 ? items.map(line).join('\n') : 'No address is banned.', json: items };
    },

    async add(args, context) {
      const { values, positionals } = parseOptions(
        args,
        { reason: { type: 'string' }, 'expires-in': { type: 'string' } },
        { min: 1, max: 1, name: '<ip>' },
      );
      const reason = requireOption(values.reason?.trim(), '--reason');
      const expiresIn = values['expires-in'] === undefined ? undefined : parseInteger(values['expires-in'], '--expires-in');
      if (expiresIn !== undefined && expiresIn < 60) throw new UsageError('--expires-in must be at least 60 seconds.');
      const ip = address(positionals[0]);
      const ban = await (await banService(context)).ban({ ip, reason, expiresIn, createdBy: 'cli' });
      return { human: `Banned ${ban.ip}. ${PICKED_UP}`, json: ban };
    },

    async remove(args, context) {
      const { positionals } = parseOptions(args, {}, { min: 1, max: 1, name: '<ip>' });
      const ip = address(positionals[0]);
      if (!(await (await banService(context)).unban(ip))) throw new CliError(`${ip} is not banned.`);
      return { human: `Lifted the ban of ${ip}. ${PICKED_UP}`, json: { ip, lifted: true } };
    },
  }),
};
