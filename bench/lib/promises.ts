import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleModules } from './build.ts';
import { round } from './stats.ts';

/**
 * Reads the promise counts written by bench/lib/promise-counter.mjs and
 * answers the promises created per operation, by source module or package
 * and by the line that made them. While an AsyncLocalStorage is in use (as
 * in Sesame and in oidc-provider alone), Node runs a hook for every promise
 * and each `await` makes one more: docs/performance.md, habits.
 */
export type PromiseCounts = { total: number; bySite: Array<[site: string, count: number]> };
export type PromiseRow = { name: string; perOp: number };
export type PromiseSummary = { perOp: number; byModule: PromiseRow[]; bySite: PromiseRow[] };

/** Where promise-counter.mjs writes the counts of process `pid`. */
export const promiseCountFile = (pid: number) => join(tmpdir(), `sesame-promises-${pid}.json`);

/**
 * Per operation, the busiest sites and modules. A site in the bundle
 * (dist/main.mjs) is named after the source module its line came from;
 * `bundle` is the bundle's text, when the server ran it.
 */
export function summarizePromises(counts: PromiseCounts, ops: number, options: { bundle?: string; top?: number } = {}): PromiseSummary {
  const moduleAt = options.bundle === undefined ? undefined : bundleModules(options.bundle);
  const bySite = new Map<string, number>();
  const byModule = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, count: number) => map.set(key, (map.get(key) ?? 0) + count);
  for (const [site, count] of counts.bySite) {
    const bundled = /\(?(?:file:\/\/)?\S*\/dist\/main\.mjs:(\d+):\d+\)?/.exec(site);
    const module = bundled && moduleAt ? moduleAt(Number(bundled[1]) - 1) : moduleOf(site);
    const name = bundled && moduleAt ? site.replace(bundled[0], `(${module}, bundle line ${bundled[1]})`) : site.replace(/\S*node_modules\//, '').replace(/file:\/\/\S*?\/(src|packages|bench)\//, '$1/');
    add(bySite, name, count);
    add(byModule, module, count);
  }
  const top = options.top ?? 30;
  const rows = (map: Map<string, number>) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, count]) => ({ name, perOp: round(count / ops, 1) }));
  return { perOp: round(counts.total / ops, 1), byModule: rows(byModule), bySite: rows(bySite) };
}

/** The package (node_modules), source module (src/…, packages/…, bench/…) or file of a stack frame. */
function moduleOf(site: string): string {
  const dependency = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(site);
  if (dependency) return dependency[1]!;
  const own = /(?:^|\/)((?:src|packages|bench)\/\S+?\.(?:ts|mjs|js)):\d+/.exec(site);
  if (own) return own[1]!;
  return site.includes('node:') ? 'node' : site;
}

export function renderPromises(summary: PromiseSummary): string {
  const table = (title: string, rows: PromiseRow[]) =>
    [`### ${title}`, '', '| per op | where |', '| ---: | --- |', ...rows.map((row) => `| ${row.perOp} | \`${row.name}\` |`)].join('\n');
  return [
    `${summary.perOp} promises created per operation (each charged to the first frame of its stack outside Node's internals and builtins).`,
    '',
    table('By package or source module', summary.byModule),
    '',
    table('By the line that made them', summary.bySite),
  ].join('\n');
}
