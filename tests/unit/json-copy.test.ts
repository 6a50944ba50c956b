import { describe, expect, it } from 'vitest';
import { jsonCopy } from '../../src/lib/json-copy.ts';

const viaJson = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

describe('jsonCopy', () => {
  it('answers what a JSON round trip answers', () => {
    const samples: unknown[] = [
      { iat: 1, exp: 2, accountId: 'u1', openid: { scope: 'openid email', claims: ['sub', 'email'] }, resources: { 'https://api.example': 'all' } },
      { kept: 1, gone: undefined, fn: () => 1, sym: Symbol('s'), nested: { deeper: [1, 'two', null, true, { x: undefined }] } },
      [undefined, () => 1, Symbol('s'), Number.NaN, Number.POSITIVE_INFINITY, -0, 1.5],
      { when: new Date('2026-11-28T18:00:00.000Z'), custom: { toJSON: () => ({ as: 'json' }) } },
      { map: new Map([['a', 1]]), set: new Set([1]) },
      'text',
      42,
      null,
      true,
      [],
      {},
    ];
    for (const sample of samples) expect(jsonCopy(sample)).toStrictEqual(viaJson(sample));
    expect(Object.is(jsonCopy(-0), 0)).toBe(true);
    expect(jsonCopy(undefined)).toBeUndefined();
  });

  it('shares no object with what it copies', () => {
    const payload = { session: { authorizations: { app: { grantId: 'g1' } } }, amr: ['email'] };
    const copied = jsonCopy(payload);
    copied.session.authorizations.app.grantId = 'changed';
    copied.amr.push('totp');
    expect(payload).toEqual({ session: { authorizations: { app: { grantId: 'g1' } } }, amr: ['email'] });
  });

  it('keeps a __proto__ key as an own property, as JSON.parse does, without touching the prototype', () => {
    const parsed = JSON.parse('{"claims":{"__proto__":{"polluted":true},"email":null}}') as { claims: Record<string, unknown> };
    const copied = jsonCopy(parsed);
    expect(Object.getPrototypeOf(copied.claims)).toBe(Object.prototype);
    expect(Object.keys(copied.claims)).toEqual(['__proto__', 'email']);
    expect(Object.getOwnPropertyDescriptor(copied.claims, '__proto__')?.value).toEqual({ polluted: true });
    expect((copied.claims as { polluted?: unknown }).polluted).toBeUndefined();
    expect(copied).toStrictEqual(viaJson(parsed));
  });

  it('throws on a bigint and on a cycle, as JSON.stringify does', () => {
    expect(() => jsonCopy({ n: 1n })).toThrow(TypeError);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(() => jsonCopy(cyclic)).toThrow(TypeError);
  });
});
