import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleModules } from './build.ts';
import { packageOf } from './cpuprofile.ts';
import { round } from './stats.ts';

/**
 * Reads an allocation profile written by bench/lib/alloc-sampler.mjs (V8's
 * sampling heap profiler, freed objects included) and answers what was
 * allocated per operation, by package or source module and by function.
 * Allocations made by V8 itself (no script: `replace`, `Promise`, a
 * builtin's result) are charged to the JavaScript function that called it,
 * as the perf summary charges native work.
 */
type HeapNode = { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: HeapNode[] };

export type AllocationRow = { name: string; kbPerOp: number; percent: number };
export type AllocationSummary = { kbPerOp: number; byPackage: AllocationRow[]; byFunction: AllocationRow[] };

/** Where alloc-sampler.mjs writes the profile of process `pid`. */
export const allocationProfileFile = (pid: number) => join(tmpdir(), `sesame-alloc-${pid}.heapprofile`);

export type AllocationProfile = { head: HeapNode };

export function summarizeAllocations({ head }: AllocationProfile, ops: number, options: { top?: number } = {}): AllocationSummary {
  const top = options.top ?? 30;
  let moduleAt: ((line: number) => string) | undefined;
  /** Where a frame's code is: its file, or for the bundle the source module it came from. */
  const placeOf = ({ url, lineNumber }: HeapNode['callFrame']) => {
    if (!url.endsWith('/dist/main.mjs')) return { path: url.replace(/^file:\/\//, ''), line: `:${lineNumber + 1}` };
    moduleAt ??= bundleModules(readFileSync(new URL(url, 'file://'), 'utf8'));
    return { path: moduleAt(lineNumber), line: ` (bundle line ${lineNumber + 1})` };
  };
  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  const add = (map: Map<string, number>, key: string, bytes: number) => map.set(key, (map.get(key) ?? 0) + bytes);
  const walk = (node: HeapNode, caller: HeapNode['callFrame'] | undefined) => {
    const charged = node.callFrame.url ? node.callFrame : caller;
    if (node.selfSize > 0) {
      total += node.selfSize;
      const frame = charged ?? node.callFrame;
      const { path, line } = placeOf(frame);
      add(byPackage, packageOf(path, frame.functionName), node.selfSize);
      add(byFunction, `${frame.functionName || '(anonymous)'} ${path.replace(/^.*node_modules\//, '')}${frame.url ? line : ''}`, node.selfSize);
    }
    for (const child of node.children) walk(child, charged);
  };
  walk(head, undefined);
  const rows = (map: Map<string, number>) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, bytes]) => ({ name, kbPerOp: round(bytes / 1024 / ops, 2), percent: round((bytes / total) * 100, 1) }));
  return { kbPerOp: round(total / 1024 / ops, 1), byPackage: rows(byPackage), byFunction: rows(byFunction) };
}

export function renderAllocations(summary: AllocationSummary): string {
  const table = (title: string, rows: AllocationRow[]) =>
    [`### ${title}`, '', '| KB per op | % | where |', '| ---: | ---: | --- |', ...rows.map((row) => `| ${row.kbPerOp} | ${row.percent} | \`${row.name}\` |`)].join('\n');
  return [
    `${summary.kbPerOp} KB allocated per operation (V8's estimate from samples every 4 KB, freed objects included; allocations V8 makes for a builtin are charged to its JavaScript caller).`,
    '',
    table('Allocated by package or source module', summary.byPackage),
    '',
    table('Allocated by function', summary.byFunction),
  ].join('\n');
}
