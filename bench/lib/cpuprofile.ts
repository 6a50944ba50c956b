import { readFileSync } from 'node:fs';
import { bundleModules } from './build.ts';

/**
 * Reads a V8 .cpuprofile (from `node --cpu-prof`) and answers where the time
 * went: self time per function, inclusive time per function (each sample
 * counted once per function on its stack), and self time per package or
 * source folder. `fromMs` skips the start of the profile (start-up, warm-up).
 */
type ProfileNode = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] };
type CpuProfile = { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] };

export type Row = { name: string; ms: number; percent: number };
export type ProfileSummary = { totalMs: number; windowMs: number; self: Row[]; inclusive: Row[]; byPackage: Row[] };

/** `node_modules/<pkg>`, `src/<folder>`, `packages/<pkg>`, `node:internal`, or the V8 pseudo-frame. */
export function packageOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1]!;
  if (url.startsWith('node:')) return 'node:internal';
  const own = /(?:^|\/)(src|packages|bench|migrations)\/([^/ ]+)/.exec(url);
  if (own) return `${own[1]}/${own[2]}`;
  return url.replace(/^file:\/\//, '');
}

const shortUrl = (url: string) => url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, '').replace(/^.*\/work\/[^/]+\//, '');

export function summarizeProfile(file: string, options: { fromMs?: number; top?: number } = {}): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  // Frames in the bundle (dist/main.mjs, from scripts/build.mjs) are named after the source module they came from.
  const bundled = profile.nodes.find((node) => node.callFrame.url.endsWith('/dist/main.mjs'))?.callFrame.url;
  const moduleAt = bundled ? bundleModules(readFileSync(new URL(bundled), 'utf8')) : undefined;
  if (moduleAt) {
    for (const node of profile.nodes) {
      const frame = node.callFrame;
      if (frame.url === bundled) frame.url = `${moduleAt(frame.lineNumber)} (bundle line ${frame.lineNumber + 1})`;
    }
  }
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const key = (node: ProfileNode) => {
    const { functionName, url, lineNumber } = node.callFrame;
    if (url.includes('(bundle line')) return `${functionName || '(anonymous)'} ${url}`;
    return url ? `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}` : functionName;
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const packages = new Map<string, number>();
  const from = profile.startTime + (options.fromMs ?? 0) * 1000;
  let time = profile.startTime;
  let windowUs = 0;
  for (let i = 0; i < profile.samples.length; i += 1) {
    const delta = profile.timeDeltas[i] ?? 0;
    time += delta;
    if (time < from) continue;
    const leaf = byId.get(profile.samples[i]!);
    if (!leaf) continue;
    windowUs += delta;
    self.set(key(leaf), (self.get(key(leaf)) ?? 0) + delta);
    const pkg = packageOf(leaf.callFrame.url, leaf.callFrame.functionName);
    packages.set(pkg, (packages.get(pkg) ?? 0) + delta);
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const node = byId.get(id)!;
      const name = key(node);
      if (seen.has(name) || name === '(root)') continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + delta);
    }
  }
  const busyUs = windowUs - (self.get('(idle)') ?? 0);
  const rows = (map: Map<string, number>) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, options.top ?? 30)
      .map(([name, us]) => ({ name, ms: Math.round(us / 100) / 10, percent: Math.round((us / Math.max(1, busyUs)) * 1000) / 10 }));
  return {
    totalMs: Math.round((profile.endTime - profile.startTime) / 1000),
    windowMs: Math.round(windowUs / 1000),
    self: rows(self),
    inclusive: rows(inclusive),
    byPackage: rows(packages),
  };
}

export function renderProfile(summary: ProfileSummary): string {
  const table = (title: string, rows: Row[]) =>
    [`### ${title}`, '', '| ms | % of busy | function |', '| ---: | ---: | --- |', ...rows.map((row) => `| ${row.ms} | ${row.percent} | \`${row.name}\` |`)].join('\n');
  return [
    `Profile window ${summary.windowMs} ms of ${summary.totalMs} ms; percentages are of the non-idle time in the window.`,
    '',
    table('Self time by package or folder', summary.byPackage),
    '',
    table('Self time by function', summary.self),
    '',
    table('Inclusive time by function', summary.inclusive),
  ].join('\n');
}

// `node --import tsx bench/lib/cpuprofile.ts <file.cpuprofile> [fromMs]`
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\/bench\//, '/bench/'))) {
  const [file, fromMs] = process.argv.slice(2);
  if (!file) throw new Error('usage: cpuprofile.ts <file.cpuprofile> [fromMs]');
  process.stdout.write(`${renderProfile(summarizeProfile(file, { fromMs: fromMs ? Number(fromMs) : 0 }))}\n`);
}
