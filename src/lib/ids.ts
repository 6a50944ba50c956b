import { randomInt } from 'node:crypto';

const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';

/** Opaque, lower-case resource ids (21 characters ≈ 108 bits), like Logto's. */
export function generateId(size = 21): string {
  let id = '';
  for (let i = 0; i < size; i += 1) id += alphabet[randomInt(alphabet.length)];
  return id;
}
