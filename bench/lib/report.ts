import type { RowCounts } from './postgres.ts';
import { describeReplanned, type ScenarioName, type ScenarioResult } from './scenarios.ts';
import { round } from './stats.ts';

/** Everything a run measured; written as JSON, rendered as Markdown tables. */
export type Report = {
  date: string;
  quick: boolean;
  durationSeconds: number;
  machine: { cpus: number; cpuModel: string; node: string; postgres: string; postgresSettings?: Record<string, string>; loadAverageStart: number[]; loadAverageEnd: number[]; memoryGb: number };
  settings: Record<string, unknown>;
  results: ScenarioResult[];
  scaling?: { single: ScenarioResult[]; double: ScenarioResult[] };
  /** The same Sesame as a plain-node bundle (as `npm start` runs it) and through tsx. */
  tsx?: { bundle: ScenarioResult[]; tsx: ScenarioResult[] };
  rows?: { seeded: number; seedSeconds: number; before: RowCounts; after: RowCounts; results: ScenarioResult[] };
  memoryGrowth?: Array<{ target: string; runs: Array<{ flowsPerSecond: number; rssAfterMb: number; hwmMb: number }> }>;
  targets?: TargetCheck[];
  notes: string[];
};

export type TargetCheck = { target: string; measured: string; met: boolean };

const fmt = (value: number | undefined, digits = 1) => (value === undefined || Number.isNaN(value) ? '–' : String(round(value, digits)));

const errorsOf = (result: ScenarioResult) => result.errors + result.warmupErrors;

export function find(results: ScenarioResult[], target: string, scenario: ScenarioName) {
  return results.find((result) => result.target === target && result.scenario === scenario);
}

function scenarioTable(results: ScenarioResult[], baselineName = 'baseline'): string {
  const lines = [
    '| scenario | target | ops/s | p50 ms | p95 ms | p99 ms | errors | peak RSS MB | CPU ms/op server + db | SQL/op | baseline ops/s ÷ ops/s | CPU/op ÷ baseline |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const scenarios = [...new Set(results.map((result) => result.scenario))];
  for (const scenario of scenarios) {
    const baseline = find(results, baselineName, scenario);
    for (const result of results.filter((candidate) => candidate.scenario === scenario)) {
      const isBaseline = result.target === baselineName;
      const speed = baseline && !isBaseline ? `${fmt(baseline.throughput / result.throughput, 2)}×` : '';
      const cost = baseline && !isBaseline ? `${fmt(result.cost.totalMsPerOp / baseline.cost.totalMsPerOp, 2)}×` : '';
      const label = result.scenario === 'steady' ? `steady (${result.rate}/s)` : result.scenario === 'signin' && result.concurrency ? `signin (${result.concurrency} users)` : result.scenario;
      lines.push(
        `| ${label} | ${result.target} | ${fmt(result.throughput)} | ${fmt(result.latency.p50)} | ${fmt(result.latency.p95)} | ${fmt(result.latency.p99)} | ${errorsOf(result)} | ${fmt(result.rssPeakMb, 0)} | ${fmt(result.cost.serverMsPerOp, 2)} + ${fmt(result.cost.dbMsPerOp, 2)} | ${result.queries ? fmt(result.queries.perOp) : ''} | ${speed} | ${cost} |`,
      );
    }
  }
  return lines.join('\n');
}

function stepsTable(results: ScenarioResult[]): string {
  const flows = results.filter((result) => result.steps && Object.keys(result.steps).length > 0);
  if (flows.length === 0) return '';
  const stepNames = [...new Set(flows.flatMap((result) => Object.keys(result.steps!)))];
  const lines = [
    `| flow | target | ${stepNames.map((step) => `${step} p50/p99`).join(' | ')} | every request p50/p99 |`,
    `| --- | --- | ${stepNames.map(() => '---:').join(' | ')} | ---: |`,
  ];
  for (const result of flows) {
    const cells = stepNames.map((step) => {
      const summary = result.steps![step];
      return summary ? `${fmt(summary.p50)} / ${fmt(summary.p99)}` : '–';
    });
    lines.push(`| ${result.scenario} | ${result.target} | ${cells.join(' | ')} | ${fmt(result.requests?.p50)} / ${fmt(result.requests?.p99)} |`);
  }
  return lines.join('\n');
}

function compareTable(before: ScenarioResult[], after: ScenarioResult[], labels: [string, string]): string {
  const lines = [
    `| scenario | ${labels[0]} ops/s | ${labels[1]} ops/s | change | ${labels[0]} p99 ms | ${labels[1]} p99 ms | errors | CPU ms/op server + db (${labels[0]} → ${labels[1]}) |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const next of after) {
    const previous = before.find((result) => result.scenario === next.scenario);
    if (!previous) continue;
    lines.push(
      `| ${next.scenario} | ${fmt(previous.throughput)} | ${fmt(next.throughput)} | ${fmt(next.throughput / previous.throughput, 2)}× | ${fmt(previous.latency.p99)} | ${fmt(next.latency.p99)} | ${errorsOf(previous) + errorsOf(next)} | ${fmt(previous.cost.serverMsPerOp, 2)} + ${fmt(previous.cost.dbMsPerOp, 2)} → ${fmt(next.cost.serverMsPerOp, 2)} + ${fmt(next.cost.dbMsPerOp, 2)} |`,
    );
  }
  return lines.join('\n');
}

function queriesSection(results: ScenarioResult[]): string {
  const counted = results.filter((result) => result.queries);
  if (counted.length === 0) return '';
  const parts = ['## SQL statements per operation (targets on PostgreSQL)', ''];
  for (const result of counted) {
    parts.push(
      `<details><summary>${result.target} ${result.scenario}: ${result.queries!.perOp} statements per operation</summary>`,
      '',
      '| per op | statement |',
      '| ---: | --- |',
      ...result.queries!.statements.map((statement) => `| ${statement.perOp} | \`${statement.sql.replace(/\|/g, '\\|')}\` |`),
      ...(result.queries!.replanned.length ? ['', `Prepared statements planned anew on most executions: ${describeReplanned(result.queries!.replanned)}.`] : []),
      '',
      '</details>',
      '',
    );
  }
  return parts.join('\n');
}

function churnTable(results: ScenarioResult[]): string {
  const measured = results.filter((result) => result.database);
  if (measured.length === 0) return '';
  const lines = [
    '## Rows written on PostgreSQL (warm-up included; after a VACUUM before each run)',
    '',
    '| scenario | target | VACUUM before s | inserted | updated | of them in place (HOT) | deleted | dead rows after | WAL kB per op (measured window) |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const result of measured) {
    const { vacuumSeconds, written, hotShare, deadRowsAfter, walKbPerOp } = result.database!;
    const label = result.scenario === 'signin' && result.concurrency ? `signin (${result.concurrency} users)` : result.scenario;
    lines.push(`| ${label} | ${result.target} | ${fmt(vacuumSeconds, 2)} | ${written.inserted} | ${written.updated} | ${fmt(hotShare * 100, 0)}% | ${written.deleted} | ${deadRowsAfter} | ${fmt(walKbPerOp, 2)} |`);
  }
  return lines.join('\n');
}

const countsLine = (counts: RowCounts) =>
  `${counts.oneTimeTokens} one-time tokens, ${counts.providerRows} provider rows (${Object.entries(counts.byModel)
    .map(([model, n]) => `${model} ${n}`)
    .join(', ')}), ${counts.users} users, database ${counts.sizeMb} MB`;

export function renderMarkdown(report: Report): string {
  const { machine } = report;
  const parts = [
    `# Sesame benchmark, ${report.date}${report.quick ? ' (quick run)' : ''}`,
    '',
    `Machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGb} GB, Node ${machine.node}, PostgreSQL ${machine.postgres}` +
      `${machine.postgresSettings ? ` (${Object.entries(machine.postgresSettings).map(([name, value]) => `${name} ${value}`).join(', ')})` : ''}. ` +
      `Load average at start ${machine.loadAverageStart.map((value) => fmt(value, 2)).join(' ')}, at end ${machine.loadAverageEnd.map((value) => fmt(value, 2)).join(' ')}. ` +
      `Run time ${fmt(report.durationSeconds / 60, 1)} min.`,
    '',
    `Settings: ${Object.entries(report.settings).map(([key, value]) => `${key}=${value}`).join(', ')}.`,
    '',
    '## Scenarios',
    '',
    scenarioTable(report.results),
    '',
    '## Sign-in steps (ms)',
    '',
    stepsTable(report.results),
  ];
  parts.push('', queriesSection(report.results), '', churnTable(report.results));
  if (report.memoryGrowth?.length) {
    parts.push('', '## Memory across repeated sign-in runs', '', '| target | flows/s per run | RSS after each run MB | high-water mark MB |', '| --- | --- | --- | ---: |');
    for (const growth of report.memoryGrowth) {
      parts.push(
        `| ${growth.target} | ${growth.runs.map((run) => fmt(run.flowsPerSecond)).join(', ')} | ${growth.runs.map((run) => fmt(run.rssAfterMb, 0)).join(', ')} | ${fmt(growth.runs.at(-1)?.hwmMb, 0)} |`,
      );
    }
  }
  if (report.scaling) {
    parts.push('', '## One → two Sesame processes on one PostgreSQL', '', compareTable(report.scaling.single, report.scaling.double, ['1 process', '2 processes']));
  }
  if (report.tsx) {
    const { bundle, tsx } = report.tsx;
    parts.push(
      '',
      '## Runtime: the bundle under plain node (as `npm start` runs it) → the TypeScript sources through tsx',
      '',
      compareTable(bundle, tsx, ['bundle', 'tsx']),
      '',
      `Peak RSS, bundle → tsx: ${tsx
        .map((next) => `${next.scenario} ${fmt(bundle.find((result) => result.scenario === next.scenario)?.rssPeakMb, 0)} → ${fmt(next.rssPeakMb, 0)} MB`)
        .join(', ')}.`,
    );
  }
  if (report.rows) {
    parts.push(
      '',
      `## With ${report.rows.seeded} more one-time tokens and provider rows`,
      '',
      `Before: ${countsLine(report.rows.before)}.`,
      '',
      `After seeding (${fmt(report.rows.seedSeconds)} s, then ANALYZE): ${countsLine(report.rows.after)}.`,
      '',
      compareTable(
        report.results.filter((result) => result.target === report.rows!.results[0]?.target),
        report.rows.results,
        ['before', 'after'],
      ),
    );
  }
  if (report.targets?.length) {
    parts.push('', '## Targets', '', '| target | measured | met |', '| --- | --- | --- |');
    for (const check of report.targets) parts.push(`| ${check.target} | ${check.measured} | ${check.met ? 'yes' : '**no**'} |`);
  }
  const errorSamples = [...report.results, ...(report.scaling?.double ?? []), ...(report.tsx?.tsx ?? []), ...(report.rows?.results ?? [])].filter((result) => result.errorSamples.length > 0);
  if (errorSamples.length) {
    parts.push('', '## Errors seen', '');
    for (const result of errorSamples) parts.push(`- ${result.target} ${result.scenario}: ${result.errorSamples.join(' | ')}`);
  }
  const peaks = [...report.results, ...(report.scaling?.double ?? []), ...(report.tsx?.tsx ?? [])].filter((result) => result.scenario === 'signin' && result.notes);
  const notes = [...peaks.map((result) => `Sign-in peak of ${result.target}: ${result.notes}.`), ...report.notes];
  if (notes.length) parts.push('', '## Notes', '', ...notes.map((note) => `- ${note}`));
  return `${parts.join('\n')}\n`;
}
