import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A relying party's callback on a loopback port: records each query it receives and answers 200 "ok". */
export type TestClient = {
  redirectUri: string;
  origin: string;
  /** How many callbacks arrived so far. */
  count: () => number;
  /** The query of the newest callback (the browser has just loaded it); forgets older ones. */
  takeCallback: () => URLSearchParams;
  close: () => Promise<void>;
};

export async function startTestClient(): Promise<TestClient> {
  const received: URLSearchParams[] = [];
  let total = 0;
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/callback') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    received.push(url.searchParams);
    total += 1;
    response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('ok');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    redirectUri: `${origin}/callback`,
    count: () => total,
    takeCallback: () => {
      const query = received.at(-1);
      received.length = 0;
      if (!query) throw new Error('the test client received no callback');
      return query;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
