import { Agent, request } from 'undici';

/**
 * The load generator's HTTP client: undici's `request` over a keep-alive
 * Agent (far cheaper per request than `fetch`, which matters when the load
 * generator shares two cores with the servers it measures). Redirects are
 * never followed: every hop of a sign-in is a request of its own.
 */
export type Reply = { status: number; headers: Record<string, string | string[] | undefined>; text: string };

export function createAgent(connections: number): Agent {
  return new Agent({
    connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
    connect: { timeout: 5_000 },
  });
}

export async function send(
  agent: Agent,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Reply> {
  const response = await request(url, { dispatcher: agent, method, headers, body });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers as Reply['headers'], text };
}

export const header = (reply: Reply, name: string): string | undefined => {
  const value = reply.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

export const basicAuth = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

export const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

/**
 * One browser's cookies. Names only: every cookie Sesame and oidc-provider
 * set has a distinct name, and every virtual user talks to one site (ports
 * aside, which browsers ignore for cookies too).
 */
export class CookieJar {
  private readonly cookies = new Map<string, string>();

  header(): string | undefined {
    if (this.cookies.size === 0) return undefined;
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  store(reply: Reply): void {
    const raw = reply.headers['set-cookie'];
    for (const line of raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]) {
      const [pair = '', ...attributes] = line.split(';');
      const separator = pair.indexOf('=');
      const name = pair.slice(0, separator).trim();
      const value = pair.slice(separator + 1).trim();
      const expired = attributes.some((attribute) => {
        const [key = '', date = ''] = attribute.trim().split('=');
        return key.toLowerCase() === 'expires' && new Date(date).getTime() < Date.now();
      });
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
}
