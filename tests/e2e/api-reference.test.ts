import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenApiDocument } from '../../packages/management-api/src/openapi.ts';
import { renderReference } from '../../packages/management-api/src/reference.ts';
import { databaseKind } from '../helpers/db.ts';
import { api, startTestSesame, type TestSesame } from '../helpers/server.ts';

const referenceFile = new URL('../../docs/reference/management-api.md', import.meta.url);

/**
 * docs/reference/management-api.md is the OpenAPI document of a running Sesame,
 * rendered. `npm run docs:reference` (UPDATE_API_REFERENCE=1) rewrites it;
 * otherwise this test fails when the page and the routes disagree.
 */
describe(`docs/reference/management-api.md (${databaseKind})`, () => {
  let t: TestSesame;
  let document: OpenApiDocument;
  let rendered: string;

  beforeAll(async () => {
    t = await startTestSesame();
    const response = await api(t, 'GET', '/api/openapi.json');
    expect(response.status).toBe(200);
    document = response.body as OpenApiDocument;
    rendered = renderReference(document);
    if (process.env.UPDATE_API_REFERENCE) writeFileSync(referenceFile, rendered);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('names every operation of the OpenAPI document with its fields', () => {
    for (const [path, methods] of Object.entries(document.paths)) {
      for (const method of Object.keys(methods)) expect(rendered).toContain(`### \`${method.toUpperCase()} ${path}\``);
    }
    expect(rendered).toContain('| `email` | string | yes |');
    expect(rendered).toContain('`Total-Number`');
    expect(rendered).not.toContain(t.baseUrl);
  });

  it('is up to date with the routes (regenerate with `npm run docs:reference`)', () => {
    const committed = readFileSync(referenceFile, 'utf8');
    expect(committed, 'docs/reference/management-api.md is stale: run `npm run docs:reference`').toBe(rendered);
  });
});
