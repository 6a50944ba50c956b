import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GuardedMiddleware } from '../../src/http/guard.ts';
import type { OpenApiDocument } from '../../packages/management-api/src/openapi.ts';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { api, managementToken, mintToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

type Schema = { $ref?: string; type?: string; properties?: Record<string, Schema>; required?: string[] };

describe(`the Management API's OpenAPI document (${databaseKind})`, () => {
  let t: TestSesame;
  let document: OpenApiDocument;

  beforeAll(async () => {
    t = await startTestSesame();
    const response = await api(t, 'GET', '/api/openapi.json');
    expect(response.status).toBe(200);
    document = response.body as OpenApiDocument;
  });
  afterAll(async () => {
    await t?.close();
  });

  const operations = () =>
    Object.entries(document.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({ path, method, operation })));
  const resolve = (schema: Schema): Schema =>
    schema.$ref ? resolve(document.components.schemas[schema.$ref.replace('#/components/schemas/', '')] as Schema) : schema;

  it('is served as JSON without a token', async () => {
    const response = await fetch(`${t.baseUrl}/api/openapi.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(((await response.json()) as { openapi: string }).openapi).toBe('3.1.0');
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document));
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('lists every guarded route of the management router with its method and path, and nothing else', () => {
    const expected = t.sesame.managementApi.stack
      .filter((layer) => typeof layer.path === 'string' && layer.stack.some((middleware) => 'spec' in (middleware as GuardedMiddleware)))
      .flatMap((layer) =>
        layer.methods
          .filter((method) => method !== 'HEAD')
          .map((method) => `${method.toLowerCase()} ${(layer.path as string).replace(/:(\w+)/g, '{$1}')}`),
      );
    const listed = operations().map(({ method, path }) => `${method} ${path}`);
    expect(listed.sort()).toEqual([...new Set(expected)].sort());
    expect(listed).toContain('post /api/one-time-tokens');
    expect(listed).toContain('get /api/one-time-tokens/{id}');
    expect(listed).toContain('post /api/applications');
    expect(Object.keys(document.paths)).not.toContain('/api/openapi.json');
  });

  it('declares every path parameter, as required, with a schema', () => {
    for (const { path, method, operation } of operations()) {
      const names = [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1]);
      const declared = (operation.parameters ?? []).filter((parameter) => parameter.in === 'path');
      expect(declared.map((parameter) => parameter.name), `${method} ${path}`).toEqual(names);
      for (const parameter of declared) {
        expect(parameter.required, `${method} ${path} ${parameter.name}`).toBe(true);
        expect(parameter.schema, `${method} ${path} ${parameter.name}`).toMatchObject({ type: 'string' });
      }
    }
  });

  it('gives operations unique ids and tells what each one answers, errors included', () => {
    const ids = operations().map(({ operation }) => operation.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { path, method, operation } of operations()) {
      const statuses = Object.keys(operation.responses);
      expect(statuses, `${method} ${path}`).toEqual(expect.arrayContaining(['401', '403']));
      expect(operation.responses['401']!.content!['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
      const list = operation.parameters?.some((parameter) => parameter.in === 'query' && parameter.name === 'page');
      if (list) expect(operation.responses['200']?.headers?.['Total-Number'], `${method} ${path}`).toBeDefined();
    }
  });

  it('documents the body of POST /api/one-time-tokens, whose email is a string', () => {
    const body = document.paths['/api/one-time-tokens']!.post!.requestBody!;
    const schema = resolve(body.content['application/json'].schema as Schema);
    expect(schema.properties!.email!.type).toBe('string');
    expect(schema.required).toContain('email');
  });

  it('documents the fields a minted token really has', async () => {
    const token = await managementToken(t);
    const minted = await mintToken(t, token, { email: uniqueEmail() });
    const schema = resolve(document.paths['/api/one-time-tokens']!.post!.responses['201']!.content!['application/json'].schema as Schema);
    expect(Object.keys(minted).sort()).toEqual(Object.keys(schema.properties!).sort());
    expect(Object.keys(minted)).toEqual(expect.arrayContaining(schema.required!));
  });

  it('points to the token endpoint that really issues Management API tokens', async () => {
    const schemes = document.components.securitySchemes as { clientCredentials: { flows: { clientCredentials: { tokenUrl: string } } } };
    expect(schemes.clientCredentials.flows.clientCredentials.tokenUrl).toBe(`${t.issuer}/token`);
    expect(document.servers).toEqual([{ url: t.baseUrl }]);
    const response = await api(t, 'GET', '/api/one-time-tokens/unknown', { token: await managementToken(t) });
    expect(response.status).toBe(404);
    expect(response.body).toMatchObject({ code: 'NOT_FOUND', message: expect.any(String) });
  });
});
