import { existsSync, readFileSync } from 'node:fs';
import { clientCredentials, exchangeCode, listTokens, mint, openInteraction, refresh, requestMagicLink, signIn, signInToCode, type OpenInteraction, type PendingCode, type Target } from './flows.ts';
import { closedLoop, drain, openLoop, type LoadResult, type Window } from './load.ts';
import { backendPids, tableActivity, vacuumDatabase, walPosition, type TableActivity } from './postgres.ts';
import { cpuMsOf, sampleMemory } from './processes.ts';
import { round, StepRecorder, type LatencySummary } from './stats.ts';

/**
 * The scenarios, each a function of a target. Every one reports throughput,
 * latency percentiles, errors, the peak RSS of the server process(es) and the
 * CPU spent per operation by the server, by PostgreSQL and by the load generator.
 */
export type Settings = {
  warmupMs: number;
  measureMs: number;
  /** Virtual users for flows (sign-ins) and for single-request scenarios. */
  flowUsers: number;
  requestUsers: number;
  /** How long to collect authorization codes for the exchange scenario (codes live 60 s). */
  codePrepMs: number;
  codeMax: number;
  /** The steady scenario's sign-ins per second (`--steady-rate`); by default half of the measured peak. */
  steadyRate?: number;
};

/** What a bench mode that measures in rounds (`--compare`, `--alternate`) is given. */
export type RoundsOptions = {
  rounds: number;
  settings: Settings & { processWarmupMs: number };
  logDir: string;
  logLevel?: string;
  cleanups: Array<() => Promise<void>>;
  log: (line: string) => void;
};

export const SCENARIOS = [
  'signin',
  'first-signin',
  'steady',
  'client-credentials',
  'refresh',
  'code-exchange',
  'mint',
  'list-email',
  'list-status',
  'magic-link',
] as const;
/** Scenarios the baseline has no counterpart for (a bare oidc-provider sends no mail). */
export const SESAME_ONLY: readonly ScenarioName[] = ['magic-link'];
/** The last two JSON lines a counted server appended to `file` (at the start and the end of a window), if there are two. */
function lastTwoSnapshots<T>(file: string): [before: T, after: T] | undefined {
  if (!existsSync(file)) return undefined;
  const [before, after] = readFileSync(file, 'utf8').trim().split('\n').slice(-2).map((line) => JSON.parse(line) as T);
  return before && after ? [before, after] : undefined;
}

/** `name` (custom plans, generic plans), … */
export const describeReplanned = (replanned: Array<{ name: string; custom: number; generic: number }>) =>
  replanned.map((plans) => `\`${plans.name}\` (${plans.custom} plans with the values, ${plans.generic} generic)`).join(', ');

export type ScenarioName = (typeof SCENARIOS)[number];

export type Cost = { serverMsPerOp: number; dbMsPerOp: number; totalMsPerOp: number; loadgenMsPerOp: number; serverCores: number; dbCores: number; loadgenCores: number };

export type ScenarioResult = LoadResult & {
  target: string;
  scenario: ScenarioName;
  /** Virtual users (closed loop, drain) or operations per second asked for (open loop). */
  concurrency?: number;
  rate?: number;
  rssPeakMb: number;
  cost: Cost;
  /** Per-step latencies of a flow, and all its requests together. */
  steps?: Record<string, LatencySummary>;
  requests?: LatencySummary;
  /** SQL statements sent per operation (Sesame on PostgreSQL), with the most frequent ones. */
  queries?: {
    perOp: number;
    statements: Array<{ sql: string; perOp: number }>;
    /** Prepared statements planned with their values more often than with their generic plan during the window (planned anew on each execution). */
    replanned: Array<{ name: string; custom: number; generic: number }>;
  };
  /**
   * Sesame on PostgreSQL: how long the VACUUM before the run took, and the
   * rows the run (warm-up included) wrote: updates made in place (HOT) need
   * no new index entries and are pruned on their page.
   */
  database?: { vacuumSeconds: number; written: Omit<TableActivity, 'deadRows'>; hotShare: number; deadRowsAfter: number; walKbPerOp: number };
  notes?: string;
};

const MINT_EMAILS = 500;
const mintEmail = (n: number) => `m${n % MINT_EMAILS}@mint.bench.example`;
/**
 * Each virtual user signs in as one of 5 people of its own: their first sign-in
 * (which creates the account) mostly falls in the warm-up, so the measured
 * sign-ins are nearly all of returning users.
 */
const signInEmail = (target: Target, vu: number, iteration: number) => `u${vu}-${iteration % 5}@${target.name}.bench.example`;

/** Reads CPU and memory around the measured part of a run. */
function meter(target: Target) {
  const pids = target.processes.map((server) => server.pid);
  let memory: ReturnType<typeof sampleMemory> | undefined;
  let start = { server: 0, loadgen: 0, at: 0 };
  let spent = { server: 0, db: 0, loadgen: 0, seconds: 0 };
  let rssPeakMb = 0;
  // PostgreSQL's share: the backends serving the target's database, found when the window opens.
  let backends: number[] = [];
  let backendsAtStart = new Map<number, number>();
  let backendsFound: Promise<void> = Promise.resolve();
  // Write-ahead log written during the window.
  let walAt: [Promise<bigint>, Promise<bigint>] | undefined;
  const read = () => ({
    server: pids.reduce((sum, pid) => sum + cpuMsOf(pid), 0),
    loadgen: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
    at: performance.now(),
  });
  const counted = target.processes.filter((server) => server.queryLog);
  const snapshot = () => counted.forEach((server) => server.child.kill('SIGUSR2'));
  const window: Window = {
    onStart: () => {
      memory = sampleMemory(pids);
      start = read();
      snapshot();
      if (target.database) {
        walAt = [walPosition(), Promise.resolve(0n)];
        backendsFound = backendPids(target.database).then((found) => {
          backends = found;
          backendsAtStart = new Map(found.map((pid) => [pid, cpuMsOf(pid)]));
        });
      }
    },
    onEnd: () => {
      snapshot();
      const end = read();
      if (walAt) walAt[1] = walPosition();
      // A backend that ended meanwhile (the pool reaps idle connections) reads 0: it adds nothing rather than a negative.
      const db = backends.reduce((sum, pid) => sum + Math.max(0, cpuMsOf(pid) - (backendsAtStart.get(pid) ?? 0)), 0);
      spent = { server: end.server - start.server, db, loadgen: end.loadgen - start.loadgen, seconds: (end.at - start.at) / 1000 };
      rssPeakMb = memory?.stop() ?? 0;
    },
  };
  const cost = (ops: number): Cost => {
    const per = (ms: number) => round(ms / Math.max(1, ops), 3);
    const cores = (ms: number) => round(ms / 1000 / Math.max(0.001, spent.seconds), 2);
    return {
      serverMsPerOp: per(spent.server),
      dbMsPerOp: per(spent.db),
      totalMsPerOp: per(spent.server + spent.db),
      loadgenMsPerOp: per(spent.loadgen),
      serverCores: cores(spent.server),
      dbCores: cores(spent.db),
      loadgenCores: cores(spent.loadgen),
    };
  };
  /** The difference between the last two snapshots of every counted process, per operation. */
  /** Backends opened during the window (a growing pool) count whole. */
  const settle = async () => {
    await backendsFound;
    if (!target.database) return;
    const now = await backendPids(target.database);
    const late = now.filter((pid) => !backendsAtStart.has(pid));
    spent.db += late.reduce((sum, pid) => sum + cpuMsOf(pid), 0);
  };
  const queries = async (ops: number): Promise<ScenarioResult['queries']> => {
    if (counted.length === 0 || ops === 0) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 300));
    const delta = new Map<string, number>();
    for (const server of counted) {
      const snapshots = lastTwoSnapshots<Record<string, number>>(server.queryLog!);
      if (!snapshots) continue;
      const [before, after] = snapshots;
      for (const [sql, n] of Object.entries(after)) delta.set(sql, (delta.get(sql) ?? 0) + n - (before[sql] ?? 0));
    }
    const total = [...delta.values()].reduce((sum, n) => sum + n, 0);
    const statements = [...delta]
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 25)
      .map(([sql, n]) => ({ sql, perOp: round(n / ops, 2) }));
    return { perOp: round(total / ops, 2), statements, replanned: replannedIn(counted.map((server) => `${server.queryLog!}.plans`)) };
  };
  /** From the last two lines of each plans log (count-queries.mjs), cumulative per connection. */
  const replannedIn = (files: string[]) => {
    const delta = new Map<string, { custom: number; generic: number }>();
    for (const file of files) {
      const snapshots = lastTwoSnapshots<Record<string, [number, number]>>(file);
      if (!snapshots) continue;
      const [before, after] = snapshots;
      for (const [name, [generic, custom]] of Object.entries(after)) {
        const [genericBefore, customBefore] = before[name] ?? [0, 0];
        const sum = delta.get(name) ?? { custom: 0, generic: 0 };
        // A connection the pool closed meanwhile takes its counts with it: never below zero.
        sum.custom += Math.max(0, custom - customBefore);
        sum.generic += Math.max(0, generic - genericBefore);
        delta.set(name, sum);
      }
    }
    // Each connection plans a statement five times with its values before it compares them with the generic plan.
    return [...delta]
      .filter(([, plans]) => plans.custom >= 20 && plans.custom > plans.generic)
      .map(([name, plans]) => ({ name, ...plans }))
      .sort((a, b) => b.custom - a.custom);
  };
  const walKbPerOp = async (ops: number) => {
    if (!walAt) return 0;
    const [start, end] = await Promise.all(walAt);
    return round(Number(end - start) / 1024 / Math.max(1, ops), 2);
  };
  return { window, cost, queries, settle, walKbPerOp, rssPeakMb: () => round(rssPeakMb, 1) };
}

function churnOf(vacuumSeconds: number, before: TableActivity, after: TableActivity, walKbPerOp: number): NonNullable<ScenarioResult['database']> {
  const written = {
    inserted: after.inserted - before.inserted,
    updated: after.updated - before.updated,
    hotUpdated: after.hotUpdated - before.hotUpdated,
    deleted: after.deleted - before.deleted,
  };
  return {
    vacuumSeconds: round(vacuumSeconds, 2),
    written,
    hotShare: round(written.hotUpdated / Math.max(1, written.updated), 2),
    deadRowsAfter: after.deadRows,
    walKbPerOp,
  };
}

export type ScenarioContext = {
  /** Peak sign-ins per second measured for this target (the steady scenario runs at half of it). */
  signInPeak?: number;
};

export async function runScenario(target: Target, scenario: ScenarioName, settings: Settings, context: ScenarioContext = {}): Promise<ScenarioResult> {
  const { warmupMs, measureMs: durationMs, flowUsers, requestUsers } = settings;
  const vacuumSeconds = target.database ? await vacuumDatabase(target.database) : 0;
  const activityBefore = target.database ? await tableActivity(target.database) : undefined;
  const m = meter(target);
  const maxOps = 2_000_000;
  const finish = async (result: LoadResult, extra: Partial<ScenarioResult> = {}): Promise<ScenarioResult> => {
    await m.settle();
    return {
      target: target.name,
      scenario,
      ...result,
      throughput: round(result.throughput, 1),
      seconds: round(result.seconds, 2),
      rssPeakMb: m.rssPeakMb(),
      cost: m.cost(result.ops),
      queries: await m.queries(result.ops),
      database: target.database && activityBefore ? churnOf(vacuumSeconds, activityBefore, await tableActivity(target.database), await m.walKbPerOp(result.ops)) : undefined,
      ...extra,
    };
  };
  const closed = (vus: number, op: (vu: number, iteration: number, measuring: boolean) => Promise<unknown>) =>
    closedLoop({ vus, warmupMs, durationMs, maxOps, window: m.window, op: async (vu, iteration, measuring) => void (await op(vu, iteration, measuring)) });

  switch (scenario) {
    case 'signin': {
      const steps = new StepRecorder();
      const result = await closedLoop({
        vus: flowUsers,
        warmupMs,
        durationMs,
        maxOps,
        window: { onStart: () => ((steps.active = true), m.window.onStart?.()), onEnd: () => ((steps.active = false), m.window.onEnd?.()) },
        op: async (vu, iteration) => void (await signIn(target, signInEmail(target, vu, iteration), (step, ms) => steps.record(step, ms))),
      });
      return finish(result, { concurrency: flowUsers, steps: steps.summaries(), requests: steps.allRequests() });
    }
    case 'first-signin': {
      // Everyone signs in for the first time, as after an invitation: the account is created (and provisioned) in the flow.
      const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
      return finish(await closed(flowUsers, (vu, iteration) => signIn(target, `f${run}-${vu}-${iteration}@${target.name}.bench.example`)), {
        concurrency: flowUsers,
        notes: 'a new account in every flow',
      });
    }
    case 'steady': {
      const rate = settings.steadyRate ?? Math.max(1, round((context.signInPeak ?? 20) / 2, 1));
      const steps = new StepRecorder();
      const result = await openLoop({
        rate,
        warmupMs,
        durationMs,
        maxInFlight: 256,
        window: { onStart: () => ((steps.active = true), m.window.onStart?.()), onEnd: () => ((steps.active = false), m.window.onEnd?.()) },
        // The people the peak search just signed in (64 virtual users' 5 each): returning users, as in the peak it is half of.
        op: async (_vu, iteration) =>
          void (await signIn(target, signInEmail(target, iteration % 64, Math.floor(iteration / 64)), (step, ms) => steps.record(step, ms))),
      });
      return finish(result, { rate, steps: steps.summaries(), requests: steps.allRequests(), notes: settings.steadyRate ? `open loop at a fixed ${rate} flows/s (--steady-rate)` : `open loop at half of the measured peak (${context.signInPeak ?? 'n/a'} flows/s)` });
    }
    case 'client-credentials':
      return finish(await closed(requestUsers, () => clientCredentials(target)), { concurrency: requestUsers });
    case 'refresh': {
      // One refresh token per virtual user, each rotated in turn: every refresh spends the previous token.
      const tokens: string[] = [];
      for (let vu = 0; vu < requestUsers; vu += flowUsers) {
        const batch = Array.from({ length: Math.min(flowUsers, requestUsers - vu) }, (_, i) => signIn(target, signInEmail(target, 2000 + vu + i, 0)));
        tokens.push(...(await Promise.all(batch)));
      }
      const result = await closed(requestUsers, async (vu) => {
        tokens[vu] = await refresh(target, tokens[vu]!);
      });
      return finish(result, { concurrency: requestUsers });
    }
    case 'code-exchange': {
      // Codes come from real sign-ins (up to the callback), then are exchanged as fast as possible, each once.
      const codes: PendingCode[] = [];
      const deadline = performance.now() + settings.codePrepMs;
      await Promise.all(
        Array.from({ length: flowUsers }, async (_, vu) => {
          for (let iteration = 0; performance.now() < deadline && codes.length < settings.codeMax; iteration += 1) {
            codes.push(await signInToCode(target, signInEmail(target, 3000 + vu, iteration)));
          }
        }),
      );
      const result = await drain({
        inputs: codes,
        workers: requestUsers,
        warmup: Math.floor(codes.length / 10),
        window: m.window,
        op: async (pending) => void (await exchangeCode(target, pending)),
      });
      return finish(result, { concurrency: requestUsers, notes: `${codes.length} codes from ${round(settings.codePrepMs / 1000, 1)} s of sign-ins; the first 10% warm up` });
    }
    case 'mint':
      return finish(await closed(requestUsers, (vu, iteration) => mint(target, mintEmail(vu * 7919 + iteration))), { concurrency: requestUsers });
    case 'list-email':
      return finish(
        await closed(requestUsers, (vu, iteration) => listTokens(target, { email: mintEmail(vu * 31 + iteration), status: 'active', page_size: '20' })),
        { concurrency: requestUsers, notes: `?email=<one of ${MINT_EMAILS}>&status=active&page_size=20` },
      );
    case 'magic-link': {
      // Known addresses, as the real flow: each is signed in once first (that creates the account).
      const emails = Array.from({ length: requestUsers }, (_, vu) => `ml${vu}@${target.name}.bench.example`);
      for (let vu = 0; vu < requestUsers; vu += flowUsers) {
        await Promise.all(emails.slice(vu, vu + flowUsers).map((email) => signInToCode(target, email)));
      }
      // One browser per virtual user with an open sign-in page (its interaction cookie), asking again and again:
      // each request supersedes that address's previous link, as "resend" does.
      const browsers: OpenInteraction[] = await Promise.all(emails.map(() => openInteraction(target)));
      const result = await closed(requestUsers, (vu) => requestMagicLink(target, browsers[vu]!, emails[vu]!));
      return finish(result, {
        concurrency: requestUsers,
        notes: `POST /api/experience/magic-link for ${requestUsers} known addresses, one open interaction each; mail to a local SMTP sink (smtp-server) in the load generator`,
      });
    }
    case 'list-status':
      return finish(await closed(requestUsers, () => listTokens(target, { status: 'active', page_size: '20' })), {
        concurrency: requestUsers,
        notes: '?status=active&page_size=20 (newest first, with the total count)',
      });
  }
}

/**
 * Peak sign-ins: a closed loop's throughput grows with its virtual users until
 * something saturates, and a server that batches its statements (group
 * commit) needs more requests in flight to get there than one that does not.
 * So every target runs at `flowUsers`, then at twice as many while that gains
 * more than 5%, up to 4×; the best run is the peak (its users are in the table).
 */
export async function findSignInPeak(target: Target, settings: Settings): Promise<ScenarioResult> {
  let best = await runScenario(target, 'signin', settings);
  const tried = [`${best.concurrency} users: ${best.throughput}/s`];
  for (let users = settings.flowUsers * 2; users <= settings.flowUsers * 4; users *= 2) {
    const next = await runScenario(target, 'signin', { ...settings, flowUsers: users });
    tried.push(`${users} users: ${next.throughput}/s`);
    const gained = next.throughput > best.throughput * 1.05;
    if (next.throughput > best.throughput) best = next;
    if (!gained) break;
  }
  return { ...best, notes: `peak of closed loops at ${tried.join(', ')}` };
}

/**
 * The sign-ins a fresh server runs before anything is reported (it keeps
 * getting faster for its first ~30 s): `processWarmupMs` of them, none when 0.
 */
export async function warmUpProcess(target: Target, settings: Settings & { processWarmupMs: number }): Promise<ScenarioResult | undefined> {
  if (settings.processWarmupMs <= 0) return undefined;
  return runScenario(target, 'signin', { ...settings, warmupMs: 0, measureMs: settings.processWarmupMs });
}
