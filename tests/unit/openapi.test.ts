import { readFileSync } from 'node:fs';
import Router from '@koa/router';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { route } from '../../src/http/guard.ts';
import { buildOpenApiDocument } from '../../packages/management-api/src/openapi.ts';

const error = { content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };

/** A throwaway router shaped like the Management API: prefix, an unguarded route, the auth middleware, guarded routes. */
function widgetRouter(): Router {
  const router = new Router({ prefix: '/api' });
  router.get('/openapi.json', (ctx) => {
    ctx.body = {};
  });
  router.use(async (_ctx, next) => next());
  router.get(
    '/widgets',
    route(
      {
        query: z.strictObject({ page: z.coerce.number().int().min(1).default(1), name: z.string().describe('Exact name') }),
        response: z.array(z.object({ id: z.string(), createdAt: z.date().transform((date) => date.toISOString()) })),
        status: 200,
        summary: 'List widgets',
      },
      async () => ({ body: [] }),
    ),
  );
  router.delete(
    '/widgets/:id',
    route(
      { params: z.strictObject({ id: z.string().min(1) }), status: 204, errors: [404], summary: 'Delete a widget', description: 'For good.' },
      async () => ({}),
    ),
  );
  return router;
}

describe('the OpenAPI document generated from guarded routes', () => {
  it('describes each guarded route exactly, and nothing else', () => {
    const document = buildOpenApiDocument(widgetRouter(), { serverUrl: 'https://id.example' });
    expect(document.paths).toEqual({
      '/api/widgets': {
        get: {
          operationId: 'getWidgets',
          summary: 'List widgets',
          tags: ['widgets'],
          parameters: [
            { name: 'page', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, default: 1 } },
            { name: 'name', in: 'query', required: true, description: 'Exact name', schema: { type: 'string' } },
          ],
          responses: {
            200: {
              description: 'OK',
              headers: { 'Total-Number': { description: 'How many items match, over all pages.', schema: { type: 'integer', minimum: 0 } } },
              content: {
                'application/json': {
                  schema: {
                    type: 'array',
                    items: {
                      type: 'object',
                      properties: { id: { type: 'string' }, createdAt: {} },
                      required: ['id', 'createdAt'],
                      additionalProperties: false,
                    },
                  },
                },
              },
            },
            400: { description: 'Bad Request', ...error },
            401: { description: 'Unauthorized', ...error },
            403: { description: 'Forbidden', ...error },
          },
        },
      },
      '/api/widgets/{id}': {
        delete: {
          operationId: 'deleteWidgetsById',
          summary: 'Delete a widget',
          description: 'For good.',
          tags: ['widgets'],
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', minLength: 1 } }],
          responses: {
            204: { description: 'No Content' },
            400: { description: 'Bad Request', ...error },
            401: { description: 'Unauthorized', ...error },
            403: { description: 'Forbidden', ...error },
            404: { description: 'Not Found', ...error },
          },
        },
      },
    });
  });

  it('names the API, its version, its server and how to get a token', () => {
    const document = buildOpenApiDocument(widgetRouter(), { serverUrl: 'https://id.example' });
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(document).toMatchObject({
      openapi: '3.1.0',
      info: { title: 'Sesame Management API', version },
      servers: [{ url: 'https://id.example' }],
      security: [{ clientCredentials: ['all'] }, { bearerToken: [] }],
    });
    expect(document.components.securitySchemes).toMatchObject({
      clientCredentials: { type: 'oauth2', flows: { clientCredentials: { tokenUrl: 'https://id.example/oidc/token', scopes: { all: expect.any(String) } } } },
      bearerToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
    });
    expect(document.components.schemas.Error).toMatchObject({
      properties: { code: { type: 'string' }, message: { type: 'string' } },
      required: ['code', 'message'],
      additionalProperties: true,
    });
  });

  it('documents a JSON body from the input side and implies the statuses the guard answers itself', () => {
    const router = new Router({ prefix: '/api' });
    const body = z.strictObject({ email: z.string().trim().toLowerCase().pipe(z.email()), count: z.number().default(1) });
    router.post('/things', route({ body, status: 201 }, async () => ({})));
    const operation = buildOpenApiDocument(router, { serverUrl: 'https://id.example' }).paths['/api/things']!.post!;
    expect(operation.requestBody).toEqual({
      required: true,
      content: {
        'application/json': {
          schema: {
            type: 'object',
            properties: { email: { type: 'string' }, count: { type: 'number', default: 1 } },
            required: ['email'],
            additionalProperties: false,
          },
        },
      },
    });
    expect(Object.keys(operation.responses)).toEqual(['201', '400', '401', '403', '413', '415']);
    expect(operation.responses['201']!.content).toEqual({ 'application/json': { schema: {} } });
  });

  it('moves named and recursive schemas to components instead of leaving references to the document root', () => {
    const organization = z.object({ id: z.string(), name: z.string().default('Unnamed') }).meta({ id: 'Organization' });
    const folder: z.ZodType = z.object({ name: z.string(), get children() {
      return z.array(folder);
    } });
    const router = new Router({ prefix: '/api' });
    router.post('/orgs', route({ body: organization, response: organization, status: 201 }, async () => ({ body: { id: 'o', name: 'n' } })));
    router.get('/folders', route({ response: z.object({ root: folder }), status: 200 }, async () => ({ body: { root: { name: 'r', children: [] } } })));
    router.get('/tree', route({ response: folder, status: 200 }, async () => ({ body: { name: 'r', children: [] } })));
    const document = buildOpenApiDocument(router, { serverUrl: 'https://id.example' });

    expect(JSON.stringify(document)).not.toMatch(/"#(\/\$defs\/[^"]*)?"/);
    const schemaOf = (path: string, method: string, status: string) =>
      document.paths[path]![method]!.responses[status]!.content!['application/json'].schema;
    // The input side (name optional thanks to its default) and the output side differ: two components.
    expect(document.paths['/api/orgs']!.post!.requestBody!.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Organization' });
    expect(schemaOf('/api/orgs', 'post', '201')).toEqual({ $ref: '#/components/schemas/OrganizationOutput' });
    expect(document.components.schemas.Organization).toMatchObject({ required: ['id'] });
    expect(document.components.schemas.OrganizationOutput).toMatchObject({ required: ['id', 'name'] });

    expect(schemaOf('/api/tree', 'get', '200')).toEqual({ $ref: '#/components/schemas/GetTreeResponse' });
    expect(document.components.schemas.GetTreeResponse).toMatchObject({
      properties: { children: { type: 'array', items: { $ref: '#/components/schemas/GetTreeResponse' } } },
    });
    const nested = schemaOf('/api/folders', 'get', '200') as { properties: { root: { $ref: string } } };
    const name = nested.properties.root.$ref.replace('#/components/schemas/', '');
    expect(document.components.schemas[name]).toMatchObject({ properties: { children: { items: { $ref: nested.properties.root.$ref } } } });
  });

  it('expands optional path groups, declares every path parameter and keeps operation ids unique', () => {
    const router = new Router({ prefix: '/api' });
    const ok = route({ status: 204 }, async () => ({}));
    router.get('/files{/:name}', ok);
    router.get('/a-b', ok);
    router.get('/a/b', ok);
    const document = buildOpenApiDocument(router, { serverUrl: 'https://id.example' });
    expect(Object.keys(document.paths)).toEqual(['/api/files/{name}', '/api/files', '/api/a-b', '/api/a/b']);
    expect(document.paths['/api/files/{name}']!.get!.parameters).toEqual([{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }]);
    expect(document.paths['/api/files']!.get!.parameters).toBeUndefined();
    const ids = Object.values(document.paths).flatMap((operations) => Object.values(operations).map((operation) => operation.operationId));
    expect(ids).toEqual(['getFilesByName', 'getFiles', 'getAB', 'getAB2']);
  });
});
