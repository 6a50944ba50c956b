import type { OpenApiDocument, OpenApiOperation } from './openapi.ts';

/**
 * The Management API's OpenAPI document rendered as one Markdown page
 * (docs/reference/management-api.md): operations grouped by their tag, each
 * with its parameters, body fields, answer and error statuses. Pure: the same
 * document gives the same page, whatever server it came from.
 */

type Schema = Record<string, unknown>;

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
const anchor = (name: string) => `schema-${name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;

function limits(schema: Schema): string[] {
  const parts: string[] = [];
  // zod's integers carry the safe-integer bounds: they say nothing to a reader.
  const bound = (value: unknown) => (typeof value === 'number' && Math.abs(value) < Number.MAX_SAFE_INTEGER ? value : undefined);
  const range = (rawMin: unknown, rawMax: unknown, unit: string) => {
    const [min, max] = [bound(rawMin), bound(rawMax)];
    if (typeof min === 'number' && typeof max === 'number') parts.push(`${min}–${max}${unit}`);
    else if (typeof min === 'number') parts.push(`≥ ${min}${unit}`);
    else if (typeof max === 'number') parts.push(`≤ ${max}${unit}`);
  };
  range(schema.minLength, schema.maxLength, ' characters');
  range(schema.minimum, schema.maximum, '');
  range(schema.minItems, schema.maxItems, ' items');
  if (schema.default !== undefined) parts.push(`default ${JSON.stringify(schema.default)}`);
  return parts;
}

/** A short type expression: `string`, `string (date-time) or null`, `"active" | "revoked"`, `[User](#…)[]`. */
export function typeOf(schema: Schema | undefined): string {
  if (!schema || Object.keys(schema).length === 0) return 'any';
  if (typeof schema.$ref === 'string') {
    const name = schema.$ref.replace('#/components/schemas/', '');
    return `[${name}](#${anchor(name)})`;
  }
  if (Array.isArray(schema.enum)) return schema.enum.map((value) => JSON.stringify(value)).join(' | ');
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  const union = (schema.anyOf ?? schema.oneOf) as Schema[] | undefined;
  if (union) return union.map((member) => typeOf(member)).join(' or ');
  const types = Array.isArray(schema.type) ? (schema.type as string[]) : typeof schema.type === 'string' ? [schema.type] : [];
  if (types.length === 0) return 'any';
  return types
    .map((type) => {
      if (type === 'array') return `${typeOf(schema.items as Schema | undefined)}[]`;
      if (type === 'string' && typeof schema.format === 'string') return `string (${schema.format})`;
      return type;
    })
    .join(' or ');
}

type Row = { name: string; type: string; required: boolean; notes: string };

/** One row per field, nested objects (and arrays of objects) flattened as `a.b` and `a[].b`. */
function fields(schema: Schema | undefined, prefix = '', depth = 0): Row[] {
  const properties = (schema?.properties ?? {}) as Record<string, Schema>;
  const required = new Set((schema?.required as string[] | undefined) ?? []);
  return Object.entries(properties).flatMap(([key, property]) => {
    const name = `${prefix}${key}`;
    const notes = [typeof property.description === 'string' ? property.description : '', ...limits(property)].filter(Boolean).join('; ');
    const row: Row = { name, type: typeOf(property), required: required.has(key), notes };
    const items = property.items as Schema | undefined;
    if (depth < 2 && property.properties) return [{ ...row, type: 'object' }, ...fields(property, `${name}.`, depth + 1)];
    if (depth < 2 && items?.properties) return [{ ...row, type: 'object[]' }, ...fields(items, `${name}[].`, depth + 1)];
    return [row];
  });
}

function table(rows: Row[], firstColumn = 'Field'): string[] {
  if (rows.length === 0) return [];
  return [
    `| ${firstColumn} | Type | Required | Notes |`,
    '| --- | --- | --- | --- |',
    ...rows.map((row) => `| \`${row.name}\` | ${cell(row.type)} | ${row.required ? 'yes' : 'no'} | ${cell(row.notes)} |`),
    '',
  ];
}

/** The body schema itself when it is an object, or a one-row table for anything else (a `$ref`, an array). */
function schemaTable(schema: Schema | undefined): string[] {
  if (!schema) return [];
  if (Object.keys(schema).length === 0) return ['JSON (its shape is not declared).', ''];
  if (schema.properties) return table(fields(schema));
  const items = schema.items as Schema | undefined;
  if (schema.type === 'array' && items?.properties) return ['A JSON array of:', '', ...table(fields(items))];
  return [`${typeOf(schema)}`, ''];
}

function renderOperation(method: string, path: string, operation: OpenApiOperation): string[] {
  const lines = [`### \`${method.toUpperCase()} ${path}\``, ''];
  if (operation.summary) lines.push(`${operation.summary}.`, '');
  if (operation.description) lines.push(operation.description, '');
  const parameters = operation.parameters ?? [];
  if (parameters.length > 0) {
    lines.push('Parameters:', '');
    lines.push(
      ...table(
        parameters.map((parameter) => ({
          name: parameter.name,
          type: `${typeOf(parameter.schema)} (${parameter.in})`,
          required: parameter.required,
          notes: [parameter.description ?? '', ...limits(parameter.schema)].filter(Boolean).join('; '),
        })),
        'Parameter',
      ),
    );
  }
  const body = operation.requestBody?.content['application/json'].schema;
  if (body) lines.push('Body (JSON):', '', ...schemaTable(body));
  const statuses = Object.keys(operation.responses).sort();
  const success = statuses.filter((status) => Number(status) < 400);
  const failures = statuses.filter((status) => Number(status) >= 400);
  for (const status of success) {
    const response = operation.responses[status]!;
    const schema = response.content?.['application/json'].schema;
    const headers = Object.keys(response.headers ?? {});
    lines.push(`Answer: **${status} ${response.description}**${headers.length ? ` with header ${headers.map((h) => `\`${h}\``).join(', ')}` : ''}${schema ? ':' : '.'}`, '');
    if (schema) lines.push(...schemaTable(schema));
  }
  if (failures.length > 0) lines.push(`Errors (\`{code, message}\`): ${failures.map((status) => `${status} ${operation.responses[status]!.description}`).join(', ')}.`, '');
  return lines;
}

export function renderReference(document: OpenApiDocument): string {
  const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ path, method, operation, tag: operation.tags[0] ?? 'other' })),
  );
  const tags = [...new Set(operations.map((entry) => entry.tag))];
  const lines = [
    '# Management API reference',
    '',
    '<!-- Generated from /api/openapi.json by tests/e2e/api-reference.test.ts: do not edit by hand.',
    '     Regenerate with `npm run docs:reference`. -->',
    '',
    `${document.info.description}`,
    '',
    'Get the token with `POST $BASE_URL/oidc/token` (HTTP Basic client authentication, `grant_type=client_credentials`,',
    '`resource=$BASE_URL/api`, `scope=all`) and send it as `Authorization: Bearer <token>`. The same document is served',
    'as OpenAPI 3.1 at `$BASE_URL/api/openapi.json`; the [Management API guide](../management-api.md) explains the',
    'conventions (errors, pagination).',
    '',
    '## Contents',
    '',
    ...tags.map((tag) => `- [${tag}](#${tag.toLowerCase().replace(/[^a-z0-9]+/g, '-')}): ${operations.filter((entry) => entry.tag === tag).length} operations`),
    '',
  ];
  for (const tag of tags) {
    lines.push(`## ${tag}`, '');
    for (const entry of operations.filter((candidate) => candidate.tag === tag)) lines.push(...renderOperation(entry.method, entry.path, entry.operation));
  }
  const schemas = Object.entries(document.components.schemas).filter(([name]) => name !== 'Error');
  if (schemas.length > 0) {
    lines.push('## Schemas', '');
    for (const [name, schema] of schemas) lines.push(`<a id="${anchor(name)}"></a>`, '', `### ${name}`, '', ...schemaTable(schema));
  }
  lines.push('## Errors', '', 'Every error answer is JSON:', '', ...schemaTable(document.components.schemas.Error));
  return `${lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}
