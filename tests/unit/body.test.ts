import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import type { Server } from 'node:http';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRawBody } from '../../src/http/body.ts';

/**
 * readRawBody over real HTTP (raw sockets, so chunking, keep-alive and a
 * client leaving mid-body are what the server sees).
 */
describe('readRawBody', () => {
  const LIMIT = 64 * 1024;
  let server: Server;
  let port: number;
  /** What each request's read came to, in order: the text's length or the error's code. */
  const outcomes: string[] = [];

  beforeAll(async () => {
    const app = new Koa();
    // A client leaving mid-request is reported to Koa's default error log; nothing to see here.
    app.silent = true;
    app.use(async (ctx) => {
      try {
        const text = await readRawBody(ctx, LIMIT);
        // A second read of the same request finds it ended.
        const again = await readRawBody(ctx, LIMIT);
        outcomes.push(`read ${text.length}`);
        ctx.body = `${text.length} ${again.length} ${text.slice(0, 12)}`;
      } catch (error) {
        const code = (error as { code?: string }).code ?? 'unknown';
        outcomes.push(code);
        ctx.status = code === 'PAYLOAD_TOO_LARGE' ? 413 : 400;
        ctx.body = code;
      }
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => void server.close());

  /** Sends `request` and answers what came back until the server closed the connection (or `waitMs` passed). */
  function exchange(request: string, waitMs = 3_000): Promise<{ text: string; closed: boolean }> {
    return new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1', () => socket.write(request));
      let text = '';
      const timer = setTimeout(() => {
        socket.destroy();
        resolve({ text, closed: false });
      }, waitMs);
      socket.on('data', (chunk) => (text += chunk.toString('utf8')));
      socket.on('close', () => {
        clearTimeout(timer);
        resolve({ text, closed: true });
      });
      socket.on('error', () => {});
    });
  }

  const chunked = (chunks: string[], connection: string) =>
    `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: ${connection}\r\n\r\n` +
    `${chunks.map((chunk) => `${Buffer.byteLength(chunk).toString(16)}\r\n${chunk}\r\n`).join('')}0\r\n\r\n`;

  it('reads a body sent in many chunks, as UTF-8, and a second read of it is empty', async () => {
    const chunks = Array.from({ length: 40 }, (_, i) => `${i % 10}ä€`.repeat(100));
    const { text } = await exchange(chunked(chunks, 'close'));
    const body = chunks.join('');
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text.endsWith(`${body.length} 0 ${body.slice(0, 12)}`)).toBe(true);
  });

  it('refuses a chunked body past the limit with 413 and closes the connection, even one asked to stay open', async () => {
    const chunks = Array.from({ length: 120 }, () => 'a'.repeat(1000));
    for (const connection of ['close', 'keep-alive']) {
      const { text, closed } = await exchange(chunked(chunks, connection));
      expect(text, connection).toMatch(/^HTTP\/1\.1 413 /);
      expect(text.toLowerCase(), connection).toContain('connection: close');
      expect(closed, connection).toBe(true);
    }
  });

  it('refuses a declared length past the limit before reading', async () => {
    const { text } = await exchange(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${LIMIT + 1}\r\nConnection: close\r\n\r\nabc`);
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
  });

  it('rejects, instead of waiting forever, when the client leaves mid-body', async () => {
    outcomes.length = 0;
    await new Promise<void>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc');
        setTimeout(() => socket.destroy(), 100);
      });
      socket.on('close', () => resolve());
      socket.on('error', () => {});
    });
    const deadline = Date.now() + 2_000;
    while (outcomes.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).not.toMatch(/^read/);
  });
});
