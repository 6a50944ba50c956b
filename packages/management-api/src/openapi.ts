import type Router from '@koa/router';

/** STUB (being implemented): the OpenAPI 3.1 document generated from the guarded routes. */
export function buildOpenApiDocument(_router: Router, info: { serverUrl: string }): Record<string, unknown> {
  return { openapi: '3.1.0', info: { title: 'Sesame Management API', version: '0.1.0' }, servers: [{ url: info.serverUrl }], paths: {} };
}
