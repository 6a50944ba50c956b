import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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

/** Waits (up to `timeoutMs`) for the profile of `pid` to be written after the stopping signal. */
export async function waitForAllocationProfile(pid: number, timeoutMs = 10_000): Promise<string> {
  const file = allocationProfileFile(pid);
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(100)) {
    if (existsSync(file)) {
      // Written in one writeFileSync: a partial file is not valid JSON yet.
      try {
        JSON.parse(readFileSync(file, 'utf8'));
        return file;
      } catch {
        // still being written
      }
    }
  }
  throw new Error(`no allocation profile at ${file} after ${timeoutMs} ms`);
}

export function summarizeAllocations(file: string, ops: number, options: { top?: number } = {}): AllocationSummary {
  const { head } = JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode };
  const top = options.top ?? 30;
  let moduleAt: ((line: number) => string) | undefined;
  const rename = (frame: HeapNode['callFrame']) => {
    if (!frame.url.endsWith('/dist/main.mjs')) return frame;
    moduleAt ??= bundleModules(readFileSync(new URL(frame.url, 'file://'), 'utf8'));
    return { ...frame, url: `${moduleAt(frame.lineNumber)} (bundle line ${frame.lineNumber + 1})` };
  };
  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  const add = (map: Map<string, number>, key: string, bytes: number) => map.set(key, (map.get(key) ?? 0) + bytes);
  const walk = (node: HeapNode, caller: HeapNode['callFrame'] | undefined) => {
    const own = node.callFrame.url ? rename(node.callFrame) : undefined;
    const charged = own ?? caller;
    if (node.selfSize > 0) {
      total += node.selfSize;
      const frame = charged ?? node.callFrame;
      add(byPackage, packageOf(frame.url.replace(/ \(bundle line \d+\)$/, ''), frame.functionName), node.selfSize);
      const where = frame.url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, '');
      // A bundle frame's name already says its line.
      add(byFunction, `${frame.functionName || '(anonymous)'} ${where}${where.endsWith(')') ? '' : `:${frame.lineNumber + 1}`}`, node.selfSize);
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
