import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import { AppError } from '../errors.ts';
import { readJsonBody } from './body.ts';
import { normalizeEmail } from '../tokens/core.ts';

/**
 * A route's declaration: what it accepts (body, query, params), what it answers
 * and with which status. The handler receives parsed input only; the response
 * is parsed through its schema, which strips undeclared fields, so a hash or a
 * sealed secret cannot leak by accident. The declaration stays attached to the
 * middleware so documentation can be generated from the routes themselves.
 */
export type GuardSpec = {
  body?: z.ZodType;
  query?: z.ZodType;
  params?: z.ZodType;
  response?: z.ZodType;
  status: number;
  errors?: number[];
  /** For the OpenAPI document. */
  summary?: string;
  description?: string;
};

type Infer<T> = T extends z.ZodType ? z.infer<T> : undefined;
export type GuardedInput<S extends GuardSpec> = {
  body: Infer<S['body']>;
  query: Infer<S['query']>;
  params: Infer<S['params']>;
};

export type GuardedResult<S extends GuardSpec> = S['response'] extends z.ZodType
  ? { body: z.input<S['response']>; headers?: Record<string, string> }
  : { body?: undefined; headers?: Record<string, string> };

export type GuardedMiddleware = Middleware & { spec: GuardSpec };

function parse<T extends z.ZodType>(schema: T, value: unknown, where: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new AppError('INVALID_INPUT', `Invalid ${where}: ${z.prettifyError(result.error).replace(/\n+/g, '; ')}`, {
      issues: result.error.issues.map((issue) => ({ path: [where, ...issue.path].join('.'), message: issue.message })),
    });
  }
  return result.data;
}

export function route<S extends GuardSpec>(
  spec: S,
  handler: (input: GuardedInput<S>, ctx: Context) => Promise<GuardedResult<S>>,
): GuardedMiddleware {
  const middleware = (async (ctx: Context) => {
    const input = {
      body: spec.body ? parse(spec.body, await readJsonBody(ctx), 'body') : undefined,
      query: spec.query ? parse(spec.query, ctx.query, 'query') : undefined,
      params: spec.params ? parse(spec.params, (ctx as Context & { params?: unknown }).params ?? {}, 'params') : undefined,
    } as GuardedInput<S>;
    const result = await handler(input, ctx);
    for (const [name, value] of Object.entries(result.headers ?? {})) ctx.set(name, value);
    ctx.status = spec.status;
    if (spec.response) {
      ctx.body = spec.response.parse(result.body);
    } else if (spec.status !== 204) {
      ctx.body = result.body ?? {};
    }
  }) as unknown as GuardedMiddleware;
  middleware.spec = spec;
  return middleware;
}

/** Common field schemas. */
/**
 * Validated as written, then lower-cased (ASCII letters only, as normalizeEmail
 * does): folding first would turn lookalikes such as the Kelvin sign (U+212A)
 * into ASCII letters and let them pass as another address.
 */
export const emailSchema = z
  .string()
  .trim()
  .max(254)
  .pipe(z.email({ message: 'must be a valid email address' }))
  .transform((email) => normalizeEmail(email));

export const idSchema = z.string().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, 'must be an id');
