import type { EventName } from '../events/index.ts';
import type { DailyCount } from './repository.ts';

export type DayStats = {
  day: string;
  linksSent: number;
  codesSent: number;
  tokensMinted: number;
  tokensConsumed: number;
  tokenFailures: number;
  signIns: { total: number; byMethod: Record<string, number> };
  signInFailures: { total: number; byMethod: Record<string, number> };
  mfaChallenges: number;
  mfaFailures: number;
  rateLimitHits: number;
  ipBans: number;
  lockouts: number;
  usersCreated: number;
  managementApiWrites: number;
};

type Counter = Exclude<keyof DayStats, 'day' | 'signIns' | 'signInFailures'>;

/** Which event each plain counter counts. */
const counters: Partial<Record<EventName, Counter>> = {
  'MagicLink.Requested': 'linksSent',
  'EmailCode.Sent': 'codesSent',
  'OneTimeToken.Created': 'tokensMinted',
  'OneTimeToken.Consumed': 'tokensConsumed',
  'OneTimeToken.Failed': 'tokenFailures',
  'Mfa.Challenged': 'mfaChallenges',
  'Mfa.Failed': 'mfaFailures',
  'RateLimit.Hit': 'rateLimitHits',
  'Ip.Banned': 'ipBans',
  'Factor.Locked': 'lockouts',
  'User.Created': 'usersCreated',
  'ManagementApi.Write': 'managementApiWrites',
};

const emptyDay = (day: string): DayStats => ({
  day,
  linksSent: 0,
  codesSent: 0,
  tokensMinted: 0,
  tokensConsumed: 0,
  tokenFailures: 0,
  signIns: { total: 0, byMethod: {} },
  signInFailures: { total: 0, byMethod: {} },
  mfaChallenges: 0,
  mfaFailures: 0,
  rateLimitHits: 0,
  ipBans: 0,
  lockouts: 0,
  usersCreated: 0,
  managementApiWrites: 0,
});

const DAY_MS = 24 * 3600 * 1000;

/** The UTC days from `from` to `to`, both included, as YYYY-MM-DD. */
export function daysBetween(from: string, to: string): string[] {
  const days: string[] = [];
  for (let time = Date.parse(`${from}T00:00:00Z`); time <= Date.parse(`${to}T00:00:00Z`); time += DAY_MS) {
    days.push(new Date(time).toISOString().slice(0, 10));
  }
  return days;
}

function add(target: DayStats, count: DailyCount): void {
  if (count.event === 'SignIn.Succeeded' || count.event === 'SignIn.Failed') {
    const bucket = count.event === 'SignIn.Succeeded' ? target.signIns : target.signInFailures;
    const method = count.method ?? 'unknown';
    bucket.total += count.count;
    bucket.byMethod[method] = (bucket.byMethod[method] ?? 0) + count.count;
    return;
  }
  const counter = counters[count.event as EventName];
  if (counter) target[counter] += count.count;
}

/** Per-day statistics for every day of [from, to] (days without events are zeros), and their totals. Pure. */
export function dailyStats(counts: DailyCount[], from: string, to: string): { days: DayStats[]; totals: Omit<DayStats, 'day'> } {
  const days = new Map(daysBetween(from, to).map((day) => [day, emptyDay(day)]));
  const totals = emptyDay('');
  for (const count of counts) {
    const day = days.get(count.day);
    if (!day) continue;
    add(day, count);
    add(totals, count);
  }
  const { day: _, ...totalsWithoutDay } = totals;
  return { days: [...days.values()], totals: totalsWithoutDay };
}
