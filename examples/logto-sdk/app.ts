/**
 * A tiny web app that signs people in to Sesame with Logto's own Node SDK
 * (`@logto/node`), unpatched, through magic links: `/landing?token&email`.
 *
 * Tokens live in a server-side session (an in-memory map keyed by an
 * HttpOnly cookie); the SDK sees it through its `storage` adapter and tells
 * us where to send the browser through its `navigate` callback.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import LogtoClient, { LogtoError, UserScope, type LogtoConfig, type PersistKey, type Storage, type StorageKey } from '@logto/node';

export type ExampleConfig = {
  /** Sesame's BASE_URL (the SDK discovers `${endpoint}/oidc/.well-known/openid-configuration`). */
  endpoint: string;
  /** A Traditional application's id and secret. */
  appId: string;
  appSecret: string;
  /** Where this app is reached, e.g. http://localhost:3002 (redirect URI `${baseUrl}/callback`). */
  baseUrl: string;
};

const SESSION_COOKIE = 'logto_example_sid';

type Session = Map<string, string>;

function sessionStorage(session: Session): Storage<StorageKey | PersistKey> {
  return {
    getItem: async (key) => session.get(key) ?? null,
    setItem: async (key, value) => {
      session.set(key, value);
    },
    removeItem: async (key) => {
      session.delete(key);
    },
  };
}

function readCookie(request: IncomingMessage, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

function json(response: ServerResponse, status: number, body: unknown) {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  response.end(JSON.stringify(body, null, 2));
}

function redirect(response: ServerResponse, location: string) {
  response.writeHead(302, { location, 'cache-control': 'no-store' });
  response.end();
}

export function createApp(config: ExampleConfig): Server {
  const baseUrl = config.baseUrl.replace(/\/$/, '');
  const redirectUri = `${baseUrl}/callback`;
  const postLogoutRedirectUri = `${baseUrl}/`;
  const logtoConfig: LogtoConfig = {
    endpoint: config.endpoint,
    appId: config.appId,
    appSecret: config.appSecret,
    // With the organizations scope the SDK adds the resource Logto requires, urn:logto:resource:organizations.
    scopes: [UserScope.Email, UserScope.Organizations, UserScope.OrganizationRoles],
  };
  const sessions = new Map<string, Session>();

  return createServer((request, response) => {
    void handle(request, response).catch((error: unknown) => {
      const body =
        error instanceof LogtoError
          ? { error: error.name, code: error.code, message: error.message, data: (error as { data?: unknown }).data }
          : { error: error instanceof Error ? error.name : 'Error', message: String(error instanceof Error ? error.message : error) };
      if (!response.headersSent) json(response, 500, body);
      else response.end();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse) {
    const url = new URL(request.url ?? '/', baseUrl);
    let sid = readCookie(request, SESSION_COOKIE);
    if (!sid || !sessions.has(sid)) {
      sid = randomBytes(24).toString('base64url');
      sessions.set(sid, new Map());
      response.setHeader('set-cookie', `${SESSION_COOKIE}=${sid}; Path=/; HttpOnly; SameSite=Lax`);
    }
    const session = sessions.get(sid)!;
    let navigateTo: string | undefined;
    const client = new LogtoClient(logtoConfig, {
      storage: sessionStorage(session),
      navigate: (target) => {
        navigateTo = target;
      },
    });

    switch (`${request.method} ${url.pathname}`) {
      case 'GET /': {
        const signedIn = await client.isAuthenticated();
        return json(response, 200, { signedIn, ...(signedIn ? { sub: (await client.getIdTokenClaims()).sub } : {}) });
      }
      case 'GET /landing': {
        // The magic link: /landing?token=…&email=…, exactly Logto's one-time-token recipe.
        const oneTimeToken = url.searchParams.get('token');
        const email = url.searchParams.get('email');
        if (!oneTimeToken || !email) return json(response, 400, { error: 'the link needs token and email' });
        await client.signIn({
          redirectUri,
          clearTokens: false,
          extraParams: { one_time_token: oneTimeToken, login_hint: email },
        });
        return redirect(response, navigateTo!);
      }
      case 'GET /callback': {
        // signIn() kept the tokens (clearTokens: false): clear them now, as Logto's recipe says.
        await client.clearAllTokens();
        await client.handleSignInCallback(url.toString());
        return redirect(response, `${baseUrl}/me`);
      }
      case 'GET /me': {
        if (!(await client.isAuthenticated())) return json(response, 401, { error: 'not signed in' });
        return json(response, 200, { claims: await client.getIdTokenClaims(), userInfo: await client.fetchUserInfo() });
      }
      case 'GET /refresh': {
        // Drop the cached access token: getAccessToken() then uses the refresh token.
        if (!(await client.isAuthenticated())) return json(response, 401, { error: 'not signed in' });
        await client.clearAccessToken();
        const accessToken = await client.getAccessToken();
        return json(response, 200, { refreshed: true, accessTokenLength: accessToken.length, userInfo: await client.fetchUserInfo() });
      }
      case 'GET /organization-token': {
        if (!(await client.isAuthenticated())) return json(response, 401, { error: 'not signed in' });
        const organizationId = url.searchParams.get('id');
        if (!organizationId) return json(response, 400, { error: 'id is required' });
        const token = await client.getOrganizationToken(organizationId);
        return json(response, 200, { organizationId, token, claims: await client.getOrganizationTokenClaims(organizationId) });
      }
      case 'GET /sign-out': {
        await client.signOut(postLogoutRedirectUri);
        sessions.delete(sid);
        return redirect(response, navigateTo!);
      }
      default:
        return json(response, 404, { error: 'not found' });
    }
  }
}
