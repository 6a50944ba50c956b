/**
 * A tiny static server for the SPA example: no build step. It serves
 * `public/` (index.html and app.js, plain browser JavaScript), oidc-client-ts's
 * browser bundle straight from node_modules, and `/config.json` with Sesame's
 * issuer and the app's client id. Every other path answers index.html, so the
 * app's own routes (`/landing`, `/callback`) are handled in the browser.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type SpaConfig = {
  /** Sesame's BASE_URL; the issuer is `${sesameUrl}/oidc`. */
  sesameUrl: string;
  /** An SPA application (public client) whose redirect URI is `${baseUrl}/callback`. */
  clientId: string;
};

const publicDir = join(dirname(fileURLToPath(import.meta.url)), 'public');
// The IIFE build, which defines `window.oidc` and bundles its one dependency.
const oidcClientBundle = join(dirname(createRequire(import.meta.url).resolve('oidc-client-ts/package.json')), 'dist/browser/oidc-client-ts.min.js');

const files: Record<string, { path: string; type: string }> = {
  '/app.js': { path: join(publicDir, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/vendor/oidc-client-ts.js': { path: oidcClientBundle, type: 'text/javascript; charset=utf-8' },
};

export function createSpaServer(config: SpaConfig): Server {
  const sesameUrl = config.sesameUrl.replace(/\/$/, '');
  const appConfig = JSON.stringify({ authority: `${sesameUrl}/oidc`, clientId: config.clientId });
  // Scripts only from here; the app talks to Sesame (discovery, token, userinfo, revocation) with fetch.
  const contentSecurityPolicy = `default-src 'self'; connect-src 'self' ${new URL(sesameUrl).origin}; frame-ancestors 'none'; base-uri 'none'`;

  return createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://spa.invalid').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const send = (status: number, type: string, body: string | Buffer) => {
      res.writeHead(status, {
        'content-type': type,
        'content-security-policy': contentSecurityPolicy,
        'cache-control': 'no-store',
        // The landing URL carries the one-time token: never leak it in a Referer.
        'referrer-policy': 'no-referrer',
        'x-content-type-options': 'nosniff',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    try {
      if (path === '/config.json') return send(200, 'application/json', appConfig);
      const file = files[path];
      if (file) return send(200, file.type, await readFile(file.path));
      if (path === '/favicon.ico') return send(404, 'text/plain', 'not found');
      send(200, 'text/html; charset=utf-8', await readFile(join(publicDir, 'index.html')));
    } catch (error) {
      console.error(error);
      send(500, 'text/plain', 'internal error');
    }
  });
}
