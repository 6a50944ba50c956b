import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import Koa from 'koa';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { requestLog } from '../../src/http/middleware.ts';
import { createRouter, routesOf } from '../../src/http/routing.ts';

/**
 * requestLog: one line per request at `info` (probe paths at `debug`), none
 * below the logger's level; the X-Request-Id header either way. Over real HTTP.
 */
describe('requestLog', () => {
  let server: Server | undefined;
  afterEach(() => void server?.close());

  async function serve(level: string) {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const text of chunk.toString('utf8').split('\n')) if (text) lines.push(JSON.parse(text) as Record<string, unknown>);
        done();
      },
    });
    const app = new Koa();
    app.use(requestLog(pino({ level, base: undefined }, sink)));
    const router = createRouter();
    router.get('/things/:id', (ctx) => void (ctx.body = 'a thing'));
    router.get('/healthz', (ctx) => void (ctx.body = { status: 'ok' }));
    app.use(routesOf(router));
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server!.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const get = async (path: string) => {
      const response = await fetch(`${base}${path}`);
      await response.text();
      return { status: response.status, id: response.headers.get('x-request-id') };
    };
    return { lines, get };
  }

  it('logs each request at info with its id, route pattern and status, probes only at debug', async () => {
    const { lines, get } = await serve('info');
    const thing = await get('/things/42?token=secret');
    const missing = await get('/nowhere');
    const probe = await get('/healthz');
    expect([thing.status, missing.status, probe.status]).toEqual([200, 404, 200]);
    expect(probe.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(lines).toEqual([
      expect.objectContaining({ level: 30, requestId: thing.id, method: 'GET', path: '/things/42', route: '/things/:id', status: 200 }),
      expect.objectContaining({ level: 30, requestId: missing.id, path: '/nowhere', route: 'unmatched', status: 404 }),
    ]);
    expect(typeof lines[0]!.ms).toBe('number');
    expect(JSON.stringify(lines)).not.toContain('secret');
  });

  it('logs the probe paths at debug', async () => {
    const { lines, get } = await serve('debug');
    const probe = await get('/healthz');
    expect(lines).toEqual([expect.objectContaining({ level: 20, requestId: probe.id, path: '/healthz', route: '/healthz', status: 200 })]);
  });

  it('writes no line below its level, and still gives every answer its request id', async () => {
    const { lines, get } = await serve('warn');
    const thing = await get('/things/1');
    expect(thing.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(lines).toEqual([]);
  });
});
