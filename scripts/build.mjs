/**
 * Compiles the server into one readable ES module, dist/main.mjs, which
 * `npm start` runs under plain node (no tsx loader thread, no compiled
 * sources kept in memory). Dependencies stay in node_modules, names are kept
 * and nothing is minified, so stack traces and CPU profiles name real
 * functions, and each module starts with a `// src/…` marker comment.
 *
 *   npm run build
 *
 * Plain JavaScript on purpose: it runs before anything can compile TypeScript.
 */
import { build } from 'esbuild';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repoRoot = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const defaultOutfile = `${repoRoot}/dist/main.mjs`;

/** Builds src/main.ts into `outfile` (with a linked source map beside it); rejects with esbuild's errors. */
export async function buildSesame({ outfile = defaultOutfile } = {}) {
  await build({
    absWorkingDir: repoRoot,
    entryPoints: ['src/main.ts'],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    keepNames: true,
    sourcemap: 'linked',
    logLevel: 'warning',
  });
  return outfile;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    await buildSesame();
  } catch (error) {
    // A build failure has already been printed by esbuild, with file and line; anything else has not.
    if (!(error instanceof Error && 'errors' in error)) console.error(error);
    process.exitCode = 1;
  }
}
