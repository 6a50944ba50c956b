import { AsyncLocalStorage } from 'node:async_hooks';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import mount from 'koa-mount';
import Provider from 'oidc-provider';
import providerStorage from 'oidc-provider/lib/helpers/als.js';
import { describe, expect, it } from 'vitest';
import { requestSlot } from '../../src/lib/request-store.ts';

describe('request slots (src/lib/request-store.ts)', () => {
  it('gives what a request and the work it starts read, apart from other requests and slots, and nothing outside a request', async () => {
    const first = requestSlot<string>('first');
    const second = requestSlot<number>('second');
    const seen: Array<[string | undefined, number | undefined]> = [];
    const request = (ctx: object, a: string, b: number) =>
      first.enter(ctx, a, () =>
        second.enter(ctx, b, async () => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          // Work left running after the request ended still sees it, as with an AsyncLocalStorage of its own.
          setTimeout(() => seen.push([first.get(), second.get()]), 10);
          seen.push([first.get(), second.get()]);
        }),
      );
    await Promise.all([request({}, 'a', 1), request({}, 'b', 2)]);
    expect(first.get()).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(seen.slice(0, 2).sort()).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
    expect(seen.slice(2).sort()).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
  });

  it('is the storage behind Provider.ctx, so the provider finds the request (and the slots) its app was mounted in', async () => {
    const slot = requestSlot<string>('mounted');
    const provider = new Provider('http://127.0.0.1/oidc', { clients: [] });
    let inProvider: { ctx: unknown; value: string | undefined } | undefined;
    provider.use(async (ctx, next) => {
      inProvider = { ctx: Provider.ctx, value: slot.get() };
      await next();
    });
    const app = new Koa();
    let outer: unknown;
    app.use((ctx, next) => {
      outer = ctx;
      expect(Provider.ctx).toBeUndefined();
      return slot.enter(ctx, 'set outside the provider', async () => {
        expect(Provider.ctx).toBe(ctx);
        await next();
      });
    });
    app.use(mount('/oidc', provider));
    const server = createServer(app.callback()).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/oidc/.well-known/openid-configuration`);
      expect(response.status).toBe(200);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(inProvider).toEqual({ ctx: outer, value: 'set outside the provider' });
  });

  it('adds no AsyncLocalStorage of its own: entering a slot runs in the one oidc-provider already uses', async () => {
    const storages: unknown[] = [];
    const original = AsyncLocalStorage.prototype.run;
    AsyncLocalStorage.prototype.run = function run(this: AsyncLocalStorage<unknown>, ...args: Parameters<typeof original>) {
      storages.push(this);
      return original.apply(this, args);
    } as typeof original;
    try {
      await requestSlot<string>('counted').enter({}, 'x', async () => undefined);
    } finally {
      AsyncLocalStorage.prototype.run = original;
    }
    expect(storages).toEqual([providerStorage]);
  });
});
