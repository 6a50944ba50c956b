import type { Middleware } from 'koa';
import { AppError } from '../errors.ts';
import { clientIp } from '../http/client-ip.ts';
import type { BanService } from './service.ts';

/** Refuses requests from banned addresses (403 IP_BANNED). Mounted after the health and metrics routes, which stay open. */
export function refuseBannedIps(bans: BanService): Middleware {
  const pass = (banned: boolean, next: () => Promise<unknown>) => {
    if (banned) throw new AppError('IP_BANNED');
    return next();
  };
  // Answered from the in-memory ban list without a promise when it is fresh (nearly every request).
  return (ctx, next) => {
    const ip = clientIp(ctx);
    const banned = bans.isBannedNow(ip);
    return banned === undefined ? bans.isBanned(ip).then((later) => pass(later, next)) : pass(banned, next);
  };
}
