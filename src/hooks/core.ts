import { createHmac } from 'node:crypto';
import { constantTimeEqual } from '../lib/crypto.ts';
import type { EventName } from '../events/index.ts';

/** The events a webhook can subscribe to. */
export const hookEvents = [
  'OneTimeToken.Created',
  'MagicLink.Requested',
  'SignIn.Succeeded',
  'SignIn.Failed',
  'User.Created',
  'Organization.Membership.Updated',
] as const satisfies readonly EventName[];

export type HookEvent = (typeof hookEvents)[number];

export const isHookEvent = (name: string): name is HookEvent => (hookEvents as readonly string[]).includes(name);

/** The body of every delivery. */
export function deliveryBody(event: string, createdAt: Date, data: unknown): string {
  return JSON.stringify({ event, createdAt: createdAt.toISOString(), data });
}

/**
 * `Sesame-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
 * The timestamp is signed with the body, so a receiver can refuse old replays.
 */
export function signatureHeader(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`, 'utf8').digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/** The receiver's check, as docs/management-api.md describes it (constant-time, with a freshness window). */
export function verifySignature(input: { header: string; body: string; secret: string; nowSeconds: number; toleranceSeconds?: number }): boolean {
  const parts = new Map(input.header.split(',').map((part) => part.split('=', 2) as [string, string]));
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1');
  if (!Number.isInteger(t) || !v1) return false;
  if (Math.abs(input.nowSeconds - t) > (input.toleranceSeconds ?? 300)) return false;
  return constantTimeEqual(signatureHeader(input.secret, input.body, t), `t=${t},v1=${v1}`);
}

/** Exponential backoff: `baseMs` after the first failed attempt, doubling, at most `maxMs`. */
export function retryDelayMs(failedAttempts: number, baseMs: number, maxMs = 3_600_000): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, failedAttempts - 1));
}
