import { execFileSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Target } from './flows.ts';
import { repoRoot } from './processes.ts';
import { runScenario, SCENARIOS, warmUpProcess, type RoundsOptions, type ScenarioName, type ScenarioResult } from './scenarios.ts';
import { median, round } from './stats.ts';
import { startSesameOnPostgres } from './targets.ts';

/**
 * `npm run bench -- --compare=<git ref>`: this checkout's Sesame and the
 * ref's, both on PostgreSQL (a database each), measured at the same time.
 *
 * Why at the same time: this machine's speed drifts by 10–30% within
 * minutes (a VM sharing its host), more than most changes are worth, so two
 * runs one after the other compare the machine as much as the code. Two
 * servers loaded together see the same machine: each scenario runs on both
 * at once, with the same virtual users, and each one's CPU per operation
 * (its process, and the backends of its own database) is divided by its own
 * operations. Every round gives a ratio; their median is the result. Which
 * side's load starts first alternates by round.
 *
 * What differs from the main bench: each server gets about half of the
 * machine, so fewer requests overlap and group commit shares less than at a
 * lone server's peak; the sign-in runs at `flowUsers` without a peak search
 * (`steady`, which needs one, is left out). Good for "is the change cheaper",
 * not for absolute numbers. The ref is built in a temporary git worktree
 * with this checkout's node_modules, so refs whose dependencies differ are
 * not comparable this way.
 */
export type Comparison = {
  ref: string;
  rounds: Array<{ scenario: ScenarioName; round: number; current: ScenarioResult; ref: ScenarioResult; ratio: number }>;
  medians: Array<{ scenario: ScenarioName; ratio: number; ratios: number[] }>;
};

/** Every scenario but `steady`, which runs at half of a peak that `--compare` does not search for. */
export const COMPARABLE: readonly ScenarioName[] = SCENARIOS.filter((scenario) => scenario !== 'steady');

const git = (...args: string[]) => execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8' }).trim();

/** Builds `ref` in a temporary worktree; answers its bundle and the worktree's removal. */
async function buildRef(ref: string): Promise<{ bundle: string; commit: string; remove: () => Promise<void> }> {
  const commit = git('rev-parse', '--verify', `${ref}^{commit}`);
  const tree = mkdtempSync(join(tmpdir(), 'sesame-compare-'));
  git('worktree', 'add', '--detach', tree, commit);
  const remove = async () => void git('worktree', 'remove', '--force', tree);
  try {
    symlinkSync(join(repoRoot, 'node_modules'), join(tree, 'node_modules'));
    const { buildSesame } = (await import(join(tree, 'scripts', 'build.mjs'))) as { buildSesame: () => Promise<string> };
    return { bundle: await buildSesame(), commit, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}

export async function compareWith(options: RoundsOptions & { ref: string; scenarios: ScenarioName[] }): Promise<Comparison> {
  const { settings, log } = options;
  const unsupported = options.scenarios.filter((scenario) => !COMPARABLE.includes(scenario));
  if (unsupported.length) throw new Error(`--compare runs ${COMPARABLE.join(', ')}; not ${unsupported.join(', ')}`);
  const built = await buildRef(options.ref);
  options.cleanups.push(built.remove);
  const label = `sesame-pg-${built.commit.slice(0, 7)}`;
  log(`Comparing this checkout (sesame-pg) with ${options.ref} (${label}), both at once, ${options.rounds} rounds`);

  const start = async (name: string, bundle?: string): Promise<Target> =>
    (await startSesameOnPostgres(name, { logDir: options.logDir, logLevel: options.logLevel, bundle, connections: settings.requestUsers * 2, cleanups: options.cleanups })).target;
  const [current, other] = await Promise.all([start('sesame-pg'), start(label, built.bundle)]);
  await Promise.all([warmUpProcess(current, settings), warmUpProcess(other, settings)]);

  const comparison: Comparison = { ref: `${options.ref} (${built.commit.slice(0, 12)})`, rounds: [], medians: [] };
  for (let round_ = 1; round_ <= options.rounds; round_ += 1) {
    for (const scenario of options.scenarios) {
      // Which load starts first alternates by round, so a head start cannot favour one side.
      const [mine, theirs] =
        round_ % 2 === 1
          ? await Promise.all([runScenario(current, scenario, settings), runScenario(other, scenario, settings)])
          : await Promise.all([runScenario(other, scenario, settings), runScenario(current, scenario, settings)]).then(([ref, mine]) => [mine, ref] as const);
      const ratio = round(mine.cost.totalMsPerOp / theirs.cost.totalMsPerOp, 3);
      comparison.rounds.push({ scenario, round: round_, current: mine, ref: theirs, ratio });
      log(
        `  round ${round_} ${scenario.padEnd(18)} this ${mine.throughput}/s ${mine.cost.serverMsPerOp}+${mine.cost.dbMsPerOp} ms` +
          `  ref ${theirs.throughput}/s ${theirs.cost.serverMsPerOp}+${theirs.cost.dbMsPerOp} ms  this ÷ ref ${ratio}` +
          `  errors ${mine.errors + mine.warmupErrors}/${theirs.errors + theirs.warmupErrors}`,
      );
    }
  }
  for (const scenario of options.scenarios) {
    const ratios = comparison.rounds.filter((entry) => entry.scenario === scenario).map((entry) => entry.ratio);
    comparison.medians.push({ scenario, ratio: round(median(ratios), 3), ratios });
  }
  return comparison;
}

export function renderComparison(comparison: Comparison, machine: string): string {
  const lines = [
    `# This checkout against ${comparison.ref}, measured at the same time`,
    '',
    machine,
    '',
    'CPU per operation, server + PostgreSQL (its own database), ms; "this ÷ ref" below 1 means this checkout is cheaper.',
    '',
    '| scenario | round | this: ops/s | this: CPU ms/op | ref: ops/s | ref: CPU ms/op | this ÷ ref | errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...comparison.rounds.map(
      ({ scenario, round: n, current, ref, ratio }) =>
        `| ${scenario} | ${n} | ${current.throughput} | ${current.cost.serverMsPerOp} + ${current.cost.dbMsPerOp} | ${ref.throughput} | ${ref.cost.serverMsPerOp} + ${ref.cost.dbMsPerOp} | ${ratio} | ${current.errors + current.warmupErrors} / ${ref.errors + ref.warmupErrors} |`,
    ),
    '',
    '| scenario | median this ÷ ref | every round |',
    '| --- | ---: | --- |',
    ...comparison.medians.map(({ scenario, ratio, ratios }) => `| ${scenario} | ${ratio} | ${ratios.join(', ')} |`),
    '',
  ];
  return lines.join('\n');
}
