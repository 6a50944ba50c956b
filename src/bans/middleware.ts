import type { Middleware } from 'koa';
import { AppError } from '../errors.ts';
import { clientIp } from '../http/client-ip.ts';
import type { BanService } from './service.ts';

/** Refuses requests from banned addresses (403 IP_BANNED). Mounted after the health and metrics routes, which stay open. */
export function refuseBannedIps(bans: BanService): Middleware {
  return async (ctx, next) => {
    if (await bans.isBanned(clientIp(ctx))) throw new AppError('IP_BANNED');
    await next();
  };
}
