/**
 * A minimal browser stand-in over real HTTP: a cookie jar (names, values,
 * paths) and manual redirects, so tests can stop at each hop of a sign-in.
 */
type Cookie = { value: string; path: string };

export class CookieClient {
  constructor(
    readonly origin: string,
    private readonly cookies = new Map<string, Cookie>(),
    private readonly defaultHeaders: Record<string, string> = {},
  ) {}

  /** The same browser sending these headers on every request (e.g. Accept-Language). */
  withHeaders(headers: Record<string, string>): CookieClient {
    return new CookieClient(this.origin, this.cookies, { ...this.defaultHeaders, ...headers });
  }

  /** The same browser talking to another port of the same host (cookies ignore ports). */
  atOrigin(origin: string): CookieClient {
    return new CookieClient(origin, this.cookies, this.defaultHeaders);
  }

  private cookieHeader(url: URL): string {
    return [...this.cookies.entries()]
      .filter(([, cookie]) => url.pathname === cookie.path || url.pathname.startsWith(cookie.path.endsWith('/') ? cookie.path : `${cookie.path}/`) || cookie.path === '/')
      .map(([name, cookie]) => `${name}=${cookie.value}`)
      .join('; ');
  }

  private store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';').map((part) => part.trim());
      const separator = pair!.indexOf('=');
      const name = pair!.slice(0, separator);
      const value = pair!.slice(separator + 1);
      const path = attributes.find((a) => a.toLowerCase().startsWith('path='))?.slice(5) ?? '/';
      const expired = attributes.some((a) => a.toLowerCase().startsWith('expires=') && new Date(a.slice(8)).getTime() < Date.now());
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, { value, path });
    }
  }

  /** One request, no redirect following. */
  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const target = new URL(url, this.origin);
    const headers = new Headers(init.headers);
    for (const [name, value] of Object.entries(this.defaultHeaders)) if (!headers.has(name)) headers.set(name, value);
    if (target.origin === new URL(this.origin).origin) {
      const cookie = this.cookieHeader(target);
      if (cookie) headers.set('cookie', cookie);
    }
    const response = await fetch(target, { ...init, headers, redirect: 'manual' });
    if (target.origin === new URL(this.origin).origin) this.store(response);
    return response;
  }

  /** Follows redirects on our origin; stops at the first URL outside `origin` or `stopAt`. */
  async follow(url: string, init: RequestInit = {}, stopAt?: (url: URL) => boolean): Promise<{ response: Response; url: URL }> {
    let current = new URL(url, this.origin);
    let response = await this.request(current.toString(), init);
    for (let hops = 0; hops < 10 && response.status >= 300 && response.status < 400; hops += 1) {
      current = new URL(response.headers.get('location')!, current);
      if (current.origin !== new URL(this.origin).origin || stopAt?.(current)) return { response, url: current };
      response = await this.request(current.toString());
    }
    return { response, url: current };
  }

  /**
   * Submits the page's form whose action ends in `suffix` the way a browser
   * does: its hidden fields (the CSRF token) plus `fields`.
   */
  submitForm(html: string, suffix: string, fields: Record<string, string> = {}) {
    const form = findForm(html, suffix);
    return this.postForm(form.action, { ...form.hidden, ...fields });
  }

  /** Submits a hosted-page form the way a browser does. */
  postForm(path: string, form: Record<string, string> = {}) {
    return this.follow(path, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(this.origin).origin },
      body: new URLSearchParams(form),
    });
  }
}

export function formAction(html: string, suffix: string): string {
  return findForm(html, suffix).action;
}

const unescapeHtml = (value: string) =>
  value.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** A form of the page by the end of its action, with its hidden inputs. */
export function findForm(html: string, suffix: string): { action: string; hidden: Record<string, string> } {
  for (const match of html.matchAll(/<form\b[^>]*\baction="([^"]+)"[^>]*>([\s\S]*?)<\/form>/g)) {
    const action = unescapeHtml(match[1] ?? '');
    if (!action.endsWith(suffix)) continue;
    const hidden: Record<string, string> = {};
    for (const input of (match[2] ?? '').matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\s*\/?>/g)) {
      hidden[unescapeHtml(input[1] ?? '')] = unescapeHtml(input[2] ?? '');
    }
    return { action, hidden };
  }
  throw new Error(`no form ending in ${suffix} on the page:\n${html}`);
}
