import Router from '@koa/router';
import type { Middleware } from 'koa';

/**
 * Every router of the app. Paths match case-sensitively: @koa/router matches
 * routes case-insensitively by default but runs a prefix's `router.use`
 * middleware only on the exact case, so `/API/users` reached the Management
 * API's routes past its access-token check (and `/API/EXPERIENCE/…` past the
 * Experience API's origin check). With `sensitive`, such a path matches no
 * route at all and ends as a 404. Callers cannot turn it off.
 */
export function createRouter(options: ConstructorParameters<typeof Router>[0] = {}): Router {
  return new Router({ ...options, sensitive: true });
}

type AllowedMethodsOptions = Parameters<Router['allowedMethods']>[0];

/** `/interaction/x/y` → `/interaction`; `/` → `/`. */
const firstSegment = (path: string) => {
  const end = path.indexOf('/', 1);
  return end === -1 ? path : path.slice(0, end);
};

/**
 * The first path segments of every route of `router`, or null when one of
 * them is not a plain segment (a parameter, a pattern, a `use` without a path):
 * then the router must see every request.
 */
function firstSegmentsOf(router: Router, normalize: (segment: string) => string): Set<string> | null {
  const segments = new Set<string>();
  for (const layer of router.stack) {
    // `router.use(fn)` under a prefix is the prefix followed by this pattern; without one, the pattern alone.
    const path = typeof layer.path === 'string' ? layer.path.replace(/\(\?:\\\/\|\$\)$/, '') : undefined;
    if (!path?.startsWith('/')) return null;
    const first = firstSegment(path);
    if (/[^A-Za-z0-9/._~-]/.test(first)) return null;
    segments.add(normalize(first));
  }
  return segments;
}

/**
 * A router's routes (and its allowedMethods, when given their options), run only for requests whose first
 * path segment one of its routes starts with. Every router otherwise matches
 * every request against each of its routes (a regular expression each) before
 * passing it on: the Management API's 70 routes, the sign-in pages', the
 * account API's, for each of the seven requests of a sign-in, most of which
 * are oidc-provider's. The segments are read from the router at the first
 * request, when every route is declared.
 */
export function routesOf(router: Router, allowed?: AllowedMethodsOptions): Middleware {
  const routes = router.routes();
  const allowedMethods = allowed ? router.allowedMethods(allowed) : undefined;
  // As the router matches: routers from createRouter are case-sensitive.
  const normalize = (router.opts as { sensitive?: boolean }).sensitive === true ? (segment: string) => segment : (segment: string) => segment.toLowerCase();
  let segments: Set<string> | null | undefined;
  return (ctx, next) => {
    if (segments === undefined) segments = firstSegmentsOf(router, normalize);
    if (segments && !segments.has(normalize(firstSegment(ctx.path)))) return next();
    return allowedMethods ? routes(ctx as never, () => allowedMethods(ctx as never, next)) : routes(ctx as never, next);
  };
}
