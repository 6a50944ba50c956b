import type { Rate, RateLimitConfig } from '../config.ts';
import { sha256 } from '../lib/crypto.ts';
import { normalizeEmail } from '../tokens/core.ts';

/** The limited actions. Add one here (and its config) to limit a new surface. */
export type LimitName = 'emailSend' | 'verification' | 'password' | 'tokenMint';

/** What each limit counts by, besides the client address, which the service reads from the request. */
export type LimitSubject = {
  emailSend: { email: string };
  verification: Record<string, never>;
  password: { email: string };
  tokenMint: { clientId: string };
};

type Dimension = 'ip' | 'email' | 'ipEmail' | 'client';

/**
 * One counter of a limit; `id` is its key prefix in the store. A `leased`
 * counter takes its points from the store several at a time (./lease.ts): for
 * high quotas, where a few points of a window going unused across instances
 * matter less than a store write per request.
 */
export type Counter = { id: string; by: Dimension; rate: Rate; leased?: boolean };

/** A limit's counters (all must allow) and whether its refusals count towards an automatic IP ban. */
export type LimitRule = { counters: Counter[]; countsTowardBans: boolean };

/**
 * The limits from the configuration; a switched-off counter (null) is left
 * out. Management API minting is per authenticated client: its refusals are a
 * quota, not an anonymous abuser, so they never ban the client's address, and
 * its counter is leased. The others are security limits and count exactly.
 */
export function limitRules(config: RateLimitConfig): Record<LimitName, LimitRule> {
  const counters = (...list: Array<[string, Dimension, Rate | null, { leased: true }?]>): Counter[] =>
    list.flatMap(([id, by, rate, options]) => (rate ? [{ id, by, rate, ...options }] : []));
  return {
    emailSend: {
      counters: counters(['emailSend:email', 'email', config.emailSendPerEmail], ['emailSend:ip', 'ip', config.emailSendPerIp]),
      countsTowardBans: true,
    },
    verification: { counters: counters(['verification:ip', 'ip', config.verificationPerIp]), countsTowardBans: true },
    password: { counters: counters(['password:ipEmail', 'ipEmail', config.passwordPerIpEmail]), countsTowardBans: true },
    tokenMint: { counters: counters(['tokenMint:client', 'client', config.tokenMintPerClient, { leased: true }]), countsTowardBans: false },
  };
}

/**
 * The address a counter counts by: IPv4 as is, IPv6 by its /64 (one
 * customer's network: an attacker holding a /64 must not get 2^64 quotas).
 * Expects a canonical address (src/http/client-ip.ts).
 */
export function ipBucket(ip: string): string {
  if (!ip.includes(':')) return ip;
  const [head = '', tail] = ip.split('::');
  const front = head ? head.split(':') : [];
  const back = tail ? tail.split(':') : [];
  const groups = tail === undefined ? front : [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back];
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}

/** The store key within a counter (the store adds the counter id). Emails are hashed: no addresses at rest. */
export function counterKey(by: Dimension, subject: { ip: string; email?: string; clientId?: string }): string {
  const email = () => normalizeEmail(subject.email ?? '');
  switch (by) {
    case 'ip':
      return ipBucket(subject.ip);
    case 'email':
      return sha256(`email\n${email()}`);
    case 'ipEmail':
      return sha256(`ip+email\n${ipBucket(subject.ip)}\n${email()}`);
    case 'client':
      return sha256(`client\n${subject.clientId ?? ''}`);
  }
}

/** A counter after an operation: points used in its current window and how long until the window ends. */
export type CounterState = { rate: Rate; consumed: number; msBeforeNext: number };

export type Verdict = {
  /** `X-RateLimit-*` of the counter closest to refusing (the one refusing, when one does). */
  headers: Record<'X-RateLimit-Limit' | 'X-RateLimit-Remaining' | 'X-RateLimit-Reset', string>;
  /** Seconds to wait, when a counter is over its limit. */
  retryAfter?: number;
};

/**
 * Pure: the headers and the refusal for counters' states at `nowMs`. `over`
 * says whether a counter refuses: after consuming, when it went past its
 * limit; for a check, when it has no point left.
 */
export function verdict(states: CounterState[], nowMs: number, isOver: (state: CounterState) => boolean): Verdict {
  const over = states.filter(isOver);
  const remaining = (state: CounterState) => Math.min(state.rate.points, Math.max(0, state.rate.points - state.consumed));
  const binding = over.length > 0
    ? over.reduce((a, b) => (b.msBeforeNext > a.msBeforeNext ? b : a))
    : states.reduce((a, b) => (remaining(b) < remaining(a) || (remaining(b) === remaining(a) && b.msBeforeNext > a.msBeforeNext) ? b : a));
  const headers = {
    'X-RateLimit-Limit': String(binding.rate.points),
    'X-RateLimit-Remaining': String(remaining(binding)),
    'X-RateLimit-Reset': String(Math.ceil((nowMs + binding.msBeforeNext) / 1000)),
  };
  if (over.length === 0) return { headers };
  return { headers, retryAfter: Math.max(1, Math.ceil(binding.msBeforeNext / 1000)) };
}
