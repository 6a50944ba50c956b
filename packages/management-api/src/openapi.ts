import { STATUS_CODES } from 'node:http';
import type Router from '@koa/router';
import { z } from 'zod';
import type { GuardedMiddleware, GuardSpec } from '../../../src/http/guard.ts';
// Imported, not read from disk: the path then holds wherever the code runs from (source or the dist/ bundle).
import packageJson from '../../../package.json' with { type: 'json' };

/**
 * The OpenAPI 3.1 document of the Management API, generated from the routes'
 * own guard declarations (src/http/guard.ts): every router layer with a
 * middleware carrying a `spec` becomes one operation. No route is named here,
 * so a new registrar is documented as soon as it is mounted. Routes without a
 * spec (the document itself) are not listed.
 */

type JsonSchema = Record<string, unknown>;
type Io = 'input' | 'output';
type Layer = Router['stack'][number];

export type OpenApiParameter = { name: string; in: 'path' | 'query'; required: boolean; description?: string; schema: JsonSchema };
export type OpenApiResponse = {
  description: string;
  headers?: Record<string, { description: string; schema: JsonSchema }>;
  content?: { 'application/json': { schema: JsonSchema } };
};
export type OpenApiOperation = {
  operationId: string;
  summary?: string;
  description?: string;
  tags: string[];
  parameters?: OpenApiParameter[];
  requestBody?: { required: true; content: { 'application/json': { schema: JsonSchema } } };
  responses: Record<string, OpenApiResponse>;
};
export type OpenApiDocument = {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  servers: { url: string }[];
  security: Record<string, string[]>[];
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, JsonSchema>; securitySchemes: Record<string, JsonSchema> };
};

const packageVersion = packageJson.version;

const errorSchema: JsonSchema = {
  type: 'object',
  properties: {
    code: { type: 'string', description: 'A stable error code such as NOT_FOUND or INVALID_INPUT.' },
    message: { type: 'string' },
    issues: {
      type: 'array',
      description: 'With INVALID_INPUT: what did not match the schema.',
      items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } },
    },
  },
  required: ['code', 'message'],
  additionalProperties: true,
};

export function buildOpenApiDocument(router: Router, { serverUrl }: { serverUrl: string }): OpenApiDocument {
  const schemas: Record<string, JsonSchema> = { Error: errorSchema };
  const convert = createSchemaConverter(schemas);
  const paths: OpenApiDocument['paths'] = {};
  const operationIds = new Set<string>();

  for (const layer of router.stack) {
    const spec = specOf(layer);
    if (!spec || typeof layer.path !== 'string') continue;
    for (const { path, names } of openApiPaths(layer.path)) {
      for (const method of layer.methods.map((m) => m.toLowerCase()).filter((m) => m !== 'head')) {
        const operations = (paths[path] ??= {});
        // Koa runs the first matching guarded layer and it never calls next(): later duplicates are unreachable.
        if (operations[method]) continue;
        const relative = layer.opts.prefix && path.startsWith(layer.opts.prefix) ? path.slice(layer.opts.prefix.length) : path;
        const operationId = uniqueId(operationIdFor(method, relative), operationIds);
        operations[method] = operation(spec, { operationId, relative, names }, convert);
      }
    }
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'Sesame Management API',
      version: packageVersion,
      description: 'Generated from the route declarations. Every operation needs an access token from the client_credentials grant with the `all` scope.',
    },
    servers: [{ url: serverUrl }],
    security: [{ clientCredentials: ['all'] }, { bearerToken: [] }],
    paths,
    components: {
      schemas,
      securitySchemes: {
        clientCredentials: {
          type: 'oauth2',
          description: `client_credentials with HTTP Basic client authentication; also send resource=${serverUrl}/api.`,
          flows: { clientCredentials: { tokenUrl: `${serverUrl}/oidc/token`, scopes: { all: 'Full access to the Management API.' } } },
        },
        bearerToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token from the client_credentials grant.' },
      },
    },
  };
}

function specOf(layer: Layer): GuardSpec | undefined {
  const specs = layer.stack.map((middleware) => (middleware as Partial<GuardedMiddleware>).spec).filter((spec) => spec !== undefined);
  return specs.at(-1);
}

type Convert = (schema: z.ZodType, io: Io, name: string) => JsonSchema;

function operation(spec: GuardSpec, at: { operationId: string; relative: string; names: string[] }, convert: Convert): OpenApiOperation {
  const { operationId, relative, names } = at;
  const name = operationId.charAt(0).toUpperCase() + operationId.slice(1);
  const pathSchema = objectSchema(spec.params && convert(spec.params, 'input', `${name}Params`));
  const querySchema = objectSchema(spec.query && convert(spec.query, 'input', `${name}Query`));

  const parameters: OpenApiParameter[] = [
    ...names.map((param) => parameter(param, 'path', true, pathSchema.properties[param] ?? { type: 'string' })),
    ...Object.entries(querySchema.properties).map(([param, schema]) => parameter(param, 'query', querySchema.required.includes(param), schema)),
  ];

  const requestBody = spec.body && { required: true as const, content: json(convert(spec.body, 'input', `${name}Body`)) };
  const success: OpenApiResponse = { description: STATUS_CODES[spec.status] ?? 'Success' };
  if (spec.status !== 204) success.content = json(spec.response ? convert(spec.response, 'output', `${name}Response`) : {});
  if ('page' in querySchema.properties) {
    success.headers = { 'Total-Number': { description: 'How many items match, over all pages.', schema: { type: 'integer', minimum: 0 } } };
  }

  // The guard itself answers 400 to input that does not parse, and readJsonBody 413/415; the auth middleware 401/403.
  const implied = [401, 403, ...(spec.body || spec.query || spec.params ? [400] : []), ...(spec.body ? [413, 415] : [])];
  const errorStatuses = [...new Set([...(spec.errors ?? []), ...implied])].filter((status) => status !== spec.status).sort((a, b) => a - b);
  const responses: Record<string, OpenApiResponse> = { [spec.status]: success };
  for (const status of errorStatuses) {
    responses[status] = { description: STATUS_CODES[status] ?? 'Error', content: json({ $ref: '#/components/schemas/Error' }) };
  }

  const firstSegment = relative.split('/').find((segment) => segment && !segment.startsWith('{'));
  return {
    operationId,
    ...(spec.summary && { summary: spec.summary }),
    ...(spec.description && { description: spec.description }),
    tags: firstSegment ? [firstSegment] : [],
    ...(parameters.length > 0 && { parameters }),
    ...(requestBody && { requestBody }),
    responses,
  };
}

const json = (schema: JsonSchema) => ({ 'application/json': { schema } });

function parameter(name: string, where: 'path' | 'query', required: boolean, schema: JsonSchema): OpenApiParameter {
  const { description, ...rest } = schema;
  return { name, in: where, required, ...(typeof description === 'string' && { description }), schema: rest };
}

function objectSchema(schema: JsonSchema | undefined): { properties: Record<string, JsonSchema>; required: string[] } {
  return {
    properties: (schema?.properties as Record<string, JsonSchema> | undefined) ?? {},
    required: (schema?.required as string[] | undefined) ?? [],
  };
}

const paramPattern = /[:*](?:"((?:[^"\\]|\\.)+)"|([\p{ID_Start}$_][\p{ID_Continue}$\u200c\u200d]*))/gu;

/** `/api/x/:id` → `/api/x/{id}`; a path-to-regexp optional group `{…}` gives one path with it and one without. */
function openApiPaths(path: string): { path: string; names: string[] }[] {
  const group = /(?<!\\)\{([^{}]*)\}/.exec(path);
  if (group) {
    const [before, after] = [path.slice(0, group.index), path.slice(group.index + group[0].length)];
    return [...openApiPaths(before + group[1] + after), ...openApiPaths(before + after || '/')];
  }
  const names: string[] = [];
  const converted = path.replace(paramPattern, (_match, quoted: string | undefined, plain: string | undefined) => {
    const name = quoted ?? plain ?? '';
    names.push(name);
    return `{${name}}`;
  });
  return [{ path: converted, names }];
}

/** `get` + `/one-time-tokens/{id}` → `getOneTimeTokensById`. */
function operationIdFor(method: string, relativePath: string): string {
  const words = relativePath.replace(/\{([^}]+)\}/g, ' by $1 ').split(/[^A-Za-z0-9]+/).filter(Boolean);
  return method + words.map((word) => word.charAt(0).toUpperCase() + word.slice(1)).join('');
}

function uniqueId(base: string, taken: Set<string>): string {
  let id = base;
  for (let n = 2; taken.has(id); n++) id = `${base}${n}`;
  taken.add(id);
  return id;
}

/**
 * zod's JSON Schema for one route schema. Transforms (such as Date → ISO
 * string) have no JSON Schema: they become `{}` unless the schema carries
 * `.meta({ type: 'string', format: 'date-time' })`. Named (`.meta({ id })`) and
 * recursive schemas come back as `$defs` referenced by `#/$defs/…` or `#`,
 * which inside this document would point at its root: they move to
 * `components.schemas` and their references follow. A name already used by a
 * different schema (e.g. the input and output sides of one id) gets a suffix.
 */
function createSchemaConverter(components: Record<string, JsonSchema>): Convert {
  const named = new Map<string, string>(); // a definition with everything it references → its component name
  return (schema, io, rootName) => {
    const generated = z.toJSONSchema(schema, { io, target: 'draft-2020-12', unrepresentable: 'any' }) as JsonSchema;
    const { $schema: _dialect, $defs, ...root } = generated;
    const defs = new Map(Object.entries(($defs as Record<string, JsonSchema> | undefined) ?? {}).map(([key, def]) => [`#/$defs/${key}`, def]));
    if (refsIn(root).has('#')) defs.set('#', root);
    if (defs.size === 0) return root;

    const closure = (ref: string, seen = new Set<string>()): Set<string> => {
      if (seen.has(ref) || !defs.has(ref)) return seen;
      seen.add(ref);
      for (const next of refsIn(defs.get(ref))) closure(next, seen);
      return seen;
    };
    const componentOf = new Map<string, string>();
    let generatedIndex = 0;
    for (const ref of defs.keys()) {
      const key = ref.slice('#/$defs/'.length).replace(/~1/g, '/').replace(/~0/g, '~');
      const preferred = ref === '#' ? rootName : key.startsWith('__schema') ? `${rootName}${++generatedIndex}` : key.replace(/[^A-Za-z0-9._-]/g, '_');
      const identity = JSON.stringify([preferred, ...[...closure(ref)].map((member) => [member, defs.get(member)])]);
      let name = named.get(identity);
      if (!name) {
        name = [preferred, `${preferred}${io === 'input' ? 'Input' : 'Output'}`].find((candidate) => !(candidate in components));
        name ??= uniqueId(`${preferred}${io === 'input' ? 'Input' : 'Output'}`, new Set(Object.keys(components)));
        named.set(identity, name);
        components[name] = {}; // claimed; filled below
      }
      componentOf.set(ref, name);
    }
    const rewrite = (value: JsonSchema) =>
      rewriteRefs(value, (ref) => (componentOf.has(ref) ? `#/components/schemas/${componentOf.get(ref)}` : undefined)) as JsonSchema;
    for (const [ref, def] of defs) {
      const name = componentOf.get(ref)!;
      if (Object.keys(components[name]!).length === 0) components[name] = rewrite(def);
    }
    return defs.has('#') ? { $ref: `#/components/schemas/${componentOf.get('#')}` } : rewrite(root);
  };
}

function refsIn(value: unknown, found = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const item of value) refsIn(item, found);
  else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (key === '$ref' && typeof item === 'string') found.add(item);
      else refsIn(item, found);
    }
  }
  return found;
}

function rewriteRefs(value: unknown, rename: (ref: string) => string | undefined): unknown {
  if (Array.isArray(value)) return value.map((item) => rewriteRefs(item, rename));
  if (!value || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [key, key === '$ref' && typeof item === 'string' ? (rename(item) ?? item) : rewriteRefs(item, rename)]),
  );
}
