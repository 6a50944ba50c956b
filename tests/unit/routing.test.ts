import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRouter, routesOf } from '../../src/http/routing.ts';

/**
 * routesOf: a router only matches requests under the first path segments of
 * its routes; the others go straight on. Over real HTTP, with @koa/router.
 */
describe('routesOf', () => {
  let server: Server;
  let base: string;
  /** Which routers looked at each request, by name. */
  const seen: string[] = [];

  beforeAll(async () => {
    const pages = new Router();
    pages.use((ctx, next) => (seen.push('pages'), next()));
    pages.get('/interaction/:uid', (ctx) => void (ctx.body = `interaction ${ctx.params.uid}`));
    pages.get('/favicon.ico', (ctx) => void (ctx.body = 'icon'));
    const api = new Router({ prefix: '/api' });
    api.use((ctx, next) => (seen.push('api'), next()));
    api.get('/things', (ctx) => void (ctx.body = 'things'));
    // A route with a parameter as its first segment: this router sees everything.
    const tenants = new Router();
    tenants.get('/:tenant/home', (ctx) => void (seen.push('tenants'), (ctx.body = `home of ${ctx.params.tenant}`)));

    const app = new Koa();
    app.use(routesOf(api, { throw: true }));
    app.use(routesOf(pages));
    app.use(routesOf(tenants));
    app.use((ctx) => {
      ctx.status = 404;
      ctx.body = 'fell through';
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const get = async (path: string, method = 'GET') => {
    seen.length = 0;
    const response = await fetch(`${base}${path}`, { method });
    return { status: response.status, body: await response.text(), seen: [...seen] };
  };

  it('dispatches requests under a router\'s segments to it', async () => {
    expect(await get('/interaction/abc')).toEqual({ status: 200, body: 'interaction abc', seen: ['pages'] });
    expect(await get('/favicon.ico')).toEqual({ status: 200, body: 'icon', seen: ['pages'] });
    expect(await get('/api/things')).toEqual({ status: 200, body: 'things', seen: ['api'] });
  });

  it('matches segments case-insensitively, as the routes do', async () => {
    // (@koa/router's own `use` under a prefix is case-sensitive: only the route runs.)
    expect(await get('/API/things')).toMatchObject({ status: 200, body: 'things' });
  });

  it('keeps allowedMethods for the routers given its options', async () => {
    expect((await get('/api/things', 'DELETE')).status).toBe(405);
  });

  it('passes other requests on without the gated routers matching them; a router it cannot gate still sees them', async () => {
    expect(await get('/oidc/token')).toEqual({ status: 404, body: 'fell through', seen: [] });
    expect(await get('/acme/home')).toEqual({ status: 200, body: 'home of acme', seen: ['tenants'] });
    // Neither `/interactions` nor `/apix` is a segment of a route.
    expect((await get('/interactions/abc')).seen).toEqual([]);
    expect((await get('/apix/things')).seen).toEqual([]);
  });

  it('createRouter matches case-sensitively: a case variant runs neither the route nor, alone, the route without its middleware', async () => {
    const guarded = createRouter({ prefix: '/admin' });
    guarded.use((ctx, next) => (ctx.get('authorization') === 'yes' ? next() : ((ctx.status = 401), undefined)));
    guarded.get('/secrets', (ctx) => void (ctx.body = 'secrets'));
    // The same routes on a plain @koa/router: the route matches /ADMIN/… but its prefix middleware does not.
    const plain = new Router({ prefix: '/admin' });
    plain.use((ctx, next) => (ctx.get('authorization') === 'yes' ? next() : ((ctx.status = 401), undefined)));
    plain.get('/secrets', (ctx) => void (ctx.body = 'secrets'));
    const serve = async (router: Router) => {
      const app = new Koa();
      app.use(routesOf(router, { throw: true }));
      const listening = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => listening.once('listening', resolve));
      const at = `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;
      try {
        const answer = async (path: string) => {
          const response = await fetch(`${at}${path}`);
          return { status: response.status, body: await response.text() };
        };
        return { exact: await answer('/admin/secrets'), variant: await answer('/ADMIN/secrets') };
      } finally {
        await new Promise((resolve) => listening.close(resolve));
      }
    };
    expect(await serve(plain)).toEqual({ exact: { status: 401, body: 'Unauthorized' }, variant: { status: 200, body: 'secrets' } });
    expect(await serve(guarded)).toEqual({ exact: { status: 401, body: 'Unauthorized' }, variant: { status: 404, body: 'Not Found' } });
  });
});
