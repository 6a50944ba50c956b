import type { Context } from 'koa';
import { AppError } from '../errors.ts';

export const BODY_LIMIT_BYTES = 64 * 1024;

/** NUL bytes cannot be stored by PostgreSQL and have no business in any input. */
export function containsNul(text: string): boolean {
  return text.includes('\u0000') || /%00/i.test(text) || /\\u0000/i.test(text);
}

/**
 * Reads the raw request body as UTF-8, refusing more than `limit` bytes: the
 * rest of a larger body is left unread, and its connection closes once the
 * answer is sent. With the stream's events, not `for await` (whose async iterator
 * costs a generator and a few promises per request; every token request reads
 * its form here).
 */
export function readRawBody(ctx: Context, limit = BODY_LIMIT_BYTES): Promise<string> {
  const declared = ctx.request.length;
  if (declared !== undefined && declared > limit) return Promise.reject(new AppError('PAYLOAD_TOO_LARGE'));
  const request = ctx.req;
  // Already read to its end (as a stream's iterator, it yields nothing more), or gone.
  if (request.readableEnded) return Promise.resolve('');
  if (request.destroyed) return Promise.reject(prematureClose());
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const settle = (error?: unknown) => {
      request.off('data', onData).off('end', onEnd).off('error', settle).off('close', onClose);
      if (error === undefined) resolve(Buffer.concat(chunks, received).toString('utf8'));
      else reject(error);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received <= limit) return void chunks.push(chunk);
      request.pause();
      ctx.set('Connection', 'close');
      settle(new AppError('PAYLOAD_TOO_LARGE'));
    };
    const onEnd = () => settle();
    // Closed before its end: the client went away mid-body.
    const onClose = () => settle(prematureClose());
    request.on('data', onData).on('end', onEnd).on('error', settle).on('close', onClose);
  });
}

const prematureClose = () => Object.assign(new Error('the request closed before its body ended'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });

export const MAX_JSON_DEPTH = 32;

/** How deeply a JSON text nests objects and arrays (strings are skipped), without parsing it. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const char = text[i];
    if (inString) {
      if (char === '\\') i += 1;
      else if (char === '"') inString = false;
    } else if (char === '"') inString = true;
    else if (char === '{' || char === '[') deepest = Math.max(deepest, (depth += 1));
    else if (char === '}' || char === ']') depth -= 1;
  }
  return deepest;
}

/** Parses a JSON body; the caller's zod guard decides what shape is acceptable. */
export async function readJsonBody(ctx: Context): Promise<unknown> {
  if (!ctx.is('application/json')) throw new AppError('UNSUPPORTED_MEDIA_TYPE');
  const raw = await readRawBody(ctx);
  if (containsNul(raw)) throw new AppError('INVALID_INPUT', 'The request contains a NUL byte.');
  // Deep nesting is never meaningful here and can exhaust the stack later (JSON.stringify, zod).
  if (jsonDepth(raw) > MAX_JSON_DEPTH) throw new AppError('INVALID_INPUT', `The JSON body nests deeper than ${MAX_JSON_DEPTH} levels.`);
  if (raw.trim() === '') return {};
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new AppError('INVALID_INPUT', 'The request body is not valid JSON.');
  }
}

/** Parses an application/x-www-form-urlencoded body into single string values. */
export async function readFormBody(ctx: Context): Promise<Record<string, string>> {
  if (!ctx.is('application/x-www-form-urlencoded')) throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'Send the form as application/x-www-form-urlencoded.');
  const raw = await readRawBody(ctx);
  if (containsNul(raw)) throw new AppError('INVALID_INPUT', 'The request contains a NUL byte.');
  const form: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(raw)) form[key] ??= value;
  return form;
}
