import type { Target } from './flows.ts';
import { findSignInPeak, runScenario, warmUpProcess, type RoundsOptions, type ScenarioResult } from './scenarios.ts';
import { median, round } from './stats.ts';
import { makeTarget, startBaseline, startSesameOnPostgres } from './targets.ts';

/**
 * `npm run bench -- --alternate [--rounds=N]`: the sign-in target's ratio
 * (Sesame on PostgreSQL ÷ the bare in-memory baseline, CPU per flow) from
 * windows taken turn about, seconds apart.
 *
 * Why: the full run measures the baseline first and Sesame minutes later,
 * and on a VM sharing its host the machine's speed drifts 10–30% within
 * minutes, so one run's ratio holds that drift too (three runs on one
 * machine within 30 minutes: 2.03×, 2.31×, 2.47×). Here both servers run the
 * whole time; each is loaded alone in its turn (the other idle), at the
 * virtual users of its own peak (found first, as in the full run); which goes
 * first alternates by round; each round's ratio comes from its two adjacent
 * windows, and the median of the rounds is the result. Unlike `--compare`,
 * no server shares the machine with another's load, so each batches as at its
 * own peak.
 */
export type Alternation = {
  peaks: { baseline: { users: number; throughput: number }; sesame: { users: number; throughput: number } };
  rounds: Array<{ round: number; first: 'baseline' | 'sesame-pg'; baseline: ScenarioResult; sesame: ScenarioResult; ratio: number }>;
  median: number;
  min: number;
  max: number;
};

export async function alternateWithBaseline(options: RoundsOptions): Promise<Alternation> {
  const { settings, log } = options;
  const connections = settings.requestUsers * 2;
  const bare = await startBaseline(options.logDir);
  const baseline = await makeTarget({ name: 'baseline', processes: [bare.server], ...bare, connections });
  const sesame = (await startSesameOnPostgres('sesame-pg', { logDir: options.logDir, logLevel: options.logLevel, connections, cleanups: options.cleanups })).target;
  log(`Sesame on PostgreSQL and the bare baseline, loaded turn about, ${options.rounds} rounds`);

  const peakUsers = new Map<Target, number>();
  for (const target of [baseline, sesame]) {
    await warmUpProcess(target, settings);
    const peak = await findSignInPeak(target, settings);
    peakUsers.set(target, peak.concurrency ?? settings.flowUsers);
    log(`  ${target.name}: ${peak.notes}`);
  }
  const at = (target: Target) => runScenario(target, 'signin', { ...settings, flowUsers: peakUsers.get(target)! });

  const rounds: Alternation['rounds'] = [];
  for (let n = 1; n <= options.rounds; n += 1) {
    const baselineFirst = n % 2 === 1;
    const [one, two] = baselineFirst ? [baseline, sesame] : [sesame, baseline];
    const firstResult = await at(one);
    const secondResult = await at(two);
    const [b, s] = baselineFirst ? [firstResult, secondResult] : [secondResult, firstResult];
    const ratio = round(s.cost.totalMsPerOp / b.cost.totalMsPerOp, 3);
    rounds.push({ round: n, first: baselineFirst ? 'baseline' : 'sesame-pg', baseline: b, sesame: s, ratio });
    log(
      `  round ${n}: baseline ${b.throughput}/s ${b.cost.totalMsPerOp} ms, sesame-pg ${s.throughput}/s ${s.cost.serverMsPerOp}+${s.cost.dbMsPerOp} ms, ` +
        `sesame-pg ÷ baseline ${ratio}, errors ${s.errors + s.warmupErrors}/${b.errors + b.warmupErrors}`,
    );
  }
  const ratios = rounds.map((entry) => entry.ratio);
  const peakOf = (target: Target, results: ScenarioResult[]) => ({ users: peakUsers.get(target)!, throughput: round(median(results.map((result) => result.throughput)), 1) });
  return {
    peaks: { baseline: peakOf(baseline, rounds.map((entry) => entry.baseline)), sesame: peakOf(sesame, rounds.map((entry) => entry.sesame)) },
    rounds,
    median: round(median(ratios), 3),
    min: Math.min(...ratios),
    max: Math.max(...ratios),
  };
}

export function renderAlternation(alternation: Alternation, machine: string): string {
  const { peaks, rounds } = alternation;
  const errors = rounds.reduce((sum, entry) => sum + entry.sesame.errors + entry.sesame.warmupErrors + entry.baseline.errors + entry.baseline.warmupErrors, 0);
  return [
    '# Sign-in cost, Sesame on PostgreSQL ÷ the bare baseline, measured turn about',
    '',
    machine,
    '',
    `Each round: a sign-in window on each server alone (the baseline at ${peaks.baseline.users} virtual users, Sesame at ${peaks.sesame.users}: each one's peak), seconds apart, the first alternating. CPU per flow: server + PostgreSQL (Sesame's database), ms.`,
    '',
    '| round | first | baseline flows/s | baseline CPU ms/flow | sesame-pg flows/s | sesame-pg CPU ms/flow | sesame-pg ÷ baseline |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: |',
    ...rounds.map(
      ({ round: n, first, baseline, sesame, ratio }) =>
        `| ${n} | ${first} | ${baseline.throughput} | ${baseline.cost.totalMsPerOp} | ${sesame.throughput} | ${sesame.cost.serverMsPerOp} + ${sesame.cost.dbMsPerOp} | ${ratio} |`,
    ),
    '',
    `Median ${alternation.median}× (rounds ${alternation.min}–${alternation.max}×); target ≤ 1.5×: ${alternation.median <= 1.5 ? 'met' : '**missed**'}. Errors: ${errors}.`,
    '',
  ].join('\n');
}
