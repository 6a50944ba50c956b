import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { allocationProfileFile, renderAllocations, summarizeAllocations, type AllocationProfile } from './allocations.ts';
import { sesameBundle } from './build.ts';
import { renderProfile, summarizeProfile } from './cpuprofile.ts';
import { postgresRoles, recordMachine, renderMachine, summarizeMachine } from './perf.ts';
import { createBenchDatabase } from './postgres.ts';
import { promiseCountFile, renderPromises, summarizePromises, type PromiseCounts } from './promises.ts';
import type { ServerProcess } from './processes.ts';
import { describeReplanned, runScenario, warmUpProcess, type ScenarioName, type Settings } from './scenarios.ts';
import { makeTarget, sesameDeployment, startBaseline, startSesame } from './targets.ts';

/**
 * `npm run bench -- --profile=<scenario> [--profile-target=sesame-pg|sesame-embedded|baseline] [--perf]`:
 * runs one scenario against a fresh server started with `node --cpu-prof`,
 * stops it cleanly (the profile is written at exit) and prints where the
 * server's CPU went during the measured part. With `--perf`, the server
 * first warms up like in a full run, then Linux `perf` samples the whole
 * machine on CPU during the measured part (see perf.ts). With `--alloc`, it
 * warms up the same way, then V8's sampling heap profiler records what the
 * server allocates during the measured part (see allocations.ts). With
 * `--promises`, it counts the promises the server creates during the
 * measured part, by the line that made them (see promises.ts).
 */
export async function profileScenario(options: {
  scenario: ScenarioName;
  target: string;
  settings: Settings & { processWarmupMs: number };
  logDir: string;
  outDir: string;
  cleanups: Array<() => Promise<void>>;
  /** Profile Sesame through tsx from its sources instead of the bundle `npm start` runs (whose frames are readable). */
  tsx?: boolean;
  /** Sample the whole machine on CPU with Linux perf, after the full run's warm-up (`settings.processWarmupMs` of sign-ins). */
  perf?: boolean;
  /** Sample the server's allocations instead of its CPU, after the same warm-up. */
  alloc?: boolean;
  /** Count the promises the server creates instead, after the same warm-up. */
  promises?: boolean;
}): Promise<void> {
  const { settings, outDir } = options;
  const modes = [options.perf && '--perf', options.alloc && '--alloc', options.promises && '--promises'].filter(Boolean);
  if (modes.length > 1) throw new Error(`${modes.join(' and ')} each need the measured part to themselves: pick one`);
  // Its codes are made first for as long as they take, so a window timed from the start would sample their sign-ins.
  if ((options.alloc || options.promises) && options.scenario === 'code-exchange') throw new Error(`${modes[0]} times its window from the scenario start: not for code-exchange`);
  mkdirSync(outDir, { recursive: true });
  const nodeFlags = options.perf
    ? ['--perf-basic-prof-only-functions']
    : options.alloc
      ? ['--import', './bench/lib/alloc-sampler.mjs']
      : options.promises
        ? ['--import', './bench/lib/promise-counter.mjs']
        : ['--cpu-prof', '--cpu-prof-dir', outDir, '--cpu-prof-interval', '500'];
  const spawnedAt = performance.now();
  let server: ServerProcess;
  let target;
  if (options.target === 'baseline') {
    const baseline = await startBaseline(options.logDir, nodeFlags);
    server = baseline.server;
    target = await makeTarget({ name: 'baseline', processes: [server], ...baseline, connections: settings.requestUsers * 2 });
  } else {
    let storage: { databaseUrl: string } | { dataDir: string };
    let databaseName: string | undefined;
    if (options.target === 'sesame-embedded') {
      const dataDir = mkdtempSync(join(tmpdir(), 'sesame-bench-data-'));
      options.cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
      storage = { dataDir };
    } else {
      const database = await createBenchDatabase();
      options.cleanups.push(database.drop);
      storage = { databaseUrl: database.url };
      databaseName = database.name;
    }
    const deployment = await sesameDeployment(storage);
    server = await startSesame(options.target, deployment, deployment.port, { logDir: options.logDir, nodeFlags, tsx: options.tsx });
    target = await makeTarget({ name: options.target, processes: [server], ...deployment, database: databaseName, connections: settings.requestUsers * 2 });
  }
  // The steady scenario needs a peak, unless it runs at a fixed rate: measure it first (it is profiled too, before the window).
  const peak = options.scenario === 'steady' && settings.steadyRate === undefined ? (await runScenario(target, 'signin', settings)).throughput : undefined;
  // perf and allocation samples see a server warmed up as in a full run (the CPU profile covers start-up too, and skips it).
  if (options.perf || options.alloc || options.promises) await warmUpProcess(target, settings);
  if (options.perf) {
    const file = join(outDir, 'perf.data');
    const [result] = await Promise.all([
      runScenario(target, options.scenario, settings, { signInPeak: peak }),
      recordMachine({ file, delayMs: settings.warmupMs, durationMs: settings.measureMs }),
    ]);
    const roles = postgresRoles();
    await target.agent.close();
    const bundle = options.target === 'baseline' || options.tsx ? undefined : await sesameBundle();
    const machine = await summarizeMachine(file, { serverPid: server.pid, loadgenPid: process.pid, bundle, postgresRoles: roles });
    await server.stop();
    const markdown = `## perf profile: ${options.target}, ${options.scenario}\n\n${result.throughput} ops/s, p99 ${result.latency.p99} ms, ${result.errors} errors, server CPU ${result.cost.serverMsPerOp} ms/op, database CPU ${result.cost.dbMsPerOp} ms/op.\n\n${renderMachine(machine)}\n`;
    writeFileSync(join(outDir, 'summary.md'), markdown);
    process.stdout.write(`${markdown}\nperf data: ${file}\n`);
    return;
  }
  /**
   * Runs the scenario with the preloaded tool (allocation sampler, promise
   * counter) switched on by a signal at the end of the scenario's warm-up and
   * off at the end of its measured part; answers the JSON the tool then wrote
   * to `written`, kept as `keepAs` in the output folder, and stops the server.
   */
  const runBetweenSignals = async <T>(written: string, keepAs: string) => {
    rmSync(written, { force: true });
    const toggle = (afterMs: number) => setTimeout(() => process.kill(server.pid, 'SIGWINCH'), afterMs);
    const timers = [toggle(settings.warmupMs), toggle(settings.warmupMs + settings.measureMs)];
    let result;
    try {
      result = await runScenario(target, options.scenario, settings, { signInPeak: peak });
    } finally {
      for (const timer of timers) clearTimeout(timer);
    }
    const data = await waitForJson<T>(written);
    const file = join(outDir, keepAs);
    copyFileSync(written, file);
    rmSync(written, { force: true });
    await target.agent.close();
    await server.stop();
    return { result, data, file };
  };
  const report = (markdown: string, where: string) => {
    writeFileSync(join(outDir, 'summary.md'), markdown);
    process.stdout.write(`${markdown}\n${where}\n`);
  };
  if (options.promises) {
    const { result, data, file } = await runBetweenSignals<PromiseCounts>(promiseCountFile(server.pid), 'promises.json');
    const bundle = options.target === 'baseline' || options.tsx ? undefined : readFileSync(await sesameBundle(), 'utf8');
    const summary = summarizePromises(data, result.ops, { bundle, top: 40 });
    report(
      `## Promises: ${options.target}, ${options.scenario}\n\n${result.throughput} ops/s (${result.ops} in the measured part, slowed by the counter), ${result.errors} errors.\n\n${renderPromises(summary)}\n`,
      `promise counts: ${file}`,
    );
    return;
  }
  if (options.alloc) {
    const { result, data, file } = await runBetweenSignals<AllocationProfile>(allocationProfileFile(server.pid), 'allocations.heapprofile');
    const summary = summarizeAllocations(data, result.ops, { top: 40 });
    report(
      `## Allocation profile: ${options.target}, ${options.scenario}\n\n${result.throughput} ops/s (${result.ops} in the measured part), p99 ${result.latency.p99} ms, ${result.errors} errors.\n\n${renderAllocations(summary)}\n`,
      `allocation profile: ${file} (opens in Chrome DevTools' Memory tab)`,
    );
    return;
  }
  const fromMs = performance.now() - spawnedAt + settings.warmupMs;
  const result = await runScenario(target, options.scenario, settings, { signInPeak: peak });
  const queries = result.queries
    ? `\n${result.queries.perOp} SQL statements per operation:\n\n${result.queries.statements.map((statement) => `- ${statement.perOp} × \`${statement.sql}\``).join('\n')}\n` +
      (result.queries.replanned.length ? `\nPrepared statements planned anew on most executions: ${describeReplanned(result.queries.replanned)}.\n` : '')
    : '';
  await target.agent.close();
  await server.stop();
  const file = readdirSync(outDir).find((name) => name.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile in ${outDir}`);
  const summary = summarizeProfile(join(outDir, file), { fromMs, top: 40 });
  const heading = `## CPU profile: ${options.target}${options.tsx ? ' (through tsx)' : ''}, ${options.scenario}\n\n${result.throughput} ops/s, p99 ${result.latency.p99} ms, ${result.errors} errors, server CPU ${result.cost.serverMsPerOp} ms/op, database CPU ${result.cost.dbMsPerOp} ms/op (under the profiler).\n`;
  const markdown = `${heading}${queries}\n${renderProfile(summary)}\n`;
  writeFileSync(join(outDir, 'summary.md'), markdown);
  writeFileSync(join(outDir, 'summary.json'), `${JSON.stringify({ result, summary }, null, 2)}\n`);
  process.stdout.write(`${markdown}\nprofile: ${join(outDir, file)}\n`);
}

/**
 * The JSON a preloaded tool writes (in one writeFileSync) after its stopping
 * signal, once the file is there and whole; up to `timeoutMs`.
 */
async function waitForJson<T>(file: string, timeoutMs = 10_000): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(100)) {
    if (!existsSync(file)) continue;
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as T;
    } catch {
      // still being written
    }
  }
  throw new Error(`nothing written to ${file} after ${timeoutMs} ms`);
}
