import { readFileSync } from 'node:fs';
import { buildSesame } from '../../scripts/build.mjs';

let built: Promise<string> | undefined;

/**
 * Sesame as `npm start` runs it: dist/main.mjs from scripts/build.mjs, built
 * once per bench run. Run with plain `node`, and its CPU profiles point at
 * real function names (the build keeps names and does not minify).
 */
export function sesameBundle(): Promise<string> {
  return (built ??= buildSesame());
}

/**
 * The node flags `npm start` runs the bundle with, read from package.json's
 * `start` script (`… exec node <flags> dist/main.mjs`), so the bench measures
 * the process production runs (the heap ceiling changes its memory, see
 * docs/operations.md).
 */
export function startFlags(): string[] {
  const { scripts } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } };
  const match = /\bexec node((?: --?[\w-]+(?:=\S+)?)*) dist\/main\.mjs$/.exec(scripts.start);
  if (!match) throw new Error(`package.json's start script no longer ends in "exec node [flags] dist/main.mjs": ${scripts.start}`);
  return match[1]!.trim().split(/\s+/).filter(Boolean);
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
