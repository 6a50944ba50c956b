import { join } from 'node:path';
import { build } from 'esbuild';
import { repoRoot } from './processes.ts';

/**
 * Sesame as one readable ES module (esbuild, which tsx already brings):
 * dependencies stay in node_modules, names are kept, nothing is minified.
 * Run with plain `node`, it shows what tsx costs at run time, and its CPU
 * profiles point at real function names and lines (tsx's output is
 * whitespace-minified). It lives three folders deep, like
 * packages/management-api/src/, so relative file reads resolve the same.
 */
export const BUNDLE = join(repoRoot, 'bench', 'results', 'build', 'main.mjs');

export async function bundleSesame(): Promise<string> {
  await build({
    entryPoints: [join(repoRoot, 'src', 'main.ts')],
    outfile: BUNDLE,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    keepNames: true,
    logLevel: 'warning',
  });
  return BUNDLE;
}

/** Which source module a line of the bundle came from (esbuild marks each with a `// path` comment). */
export function bundleModules(source: string): (line: number) => string {
  const starts: Array<[number, string]> = [];
  source.split('\n').forEach((text, index) => {
    const match = /^\/\/ ((?:src|packages|migrations)\/\S+\.ts)$/.exec(text);
    if (match) starts.push([index, match[1]!]);
  });
  return (line) => {
    let found = 'bundle';
    for (const [start, module] of starts) {
      if (start > line) break;
      found = module;
    }
    return found;
  };
}
