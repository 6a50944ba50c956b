// Preloaded into a server by `npm run bench -- --profile=<scenario> --promises` (bench/lib/profile.ts):
// SIGWINCH starts counting the promises the process creates, each by the
// first frame of its stack that is neither Node's internals nor a builtin
// (`Promise.then`, `new Promise`: charged to their caller); the next SIGWINCH
// stops and writes the counts to <tmpdir>/sesame-promises-<pid>.json
// (promiseCountFile in promises.ts). Each counted promise captures a stack, so
// the server runs much slower while counting; the counts per operation are
// what matter. Plain JavaScript, like the other preloads, for the bundle.
import { createHook } from 'node:async_hooks';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let counting = false;
let total = 0;
/** @type {Map<string, number>} */
const bySite = new Map();
/** @type {{ stack?: string }} */
const holder = {};

/**
 * The frame a promise is charged to: "fn (file:line:column)".
 * @param {string} stack
 */
function siteOf(stack) {
  const lines = stack.split('\n');
  for (let index = 1; index < lines.length; index += 1) {
    const line = /** @type {string} */ (lines[index]).trim();
    if (line.includes('node:internal') || line.includes('(<anonymous>)') || line.includes('promise-counter.mjs')) continue;
    return line.replace(/^at /, '');
  }
  return '(Node internals)';
}

createHook({
  init(_asyncId, type) {
    if (!counting || type !== 'PROMISE') return;
    total += 1;
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 30;
    Error.captureStackTrace(holder);
    Error.stackTraceLimit = limit;
    const site = siteOf(holder.stack ?? '');
    bySite.set(site, (bySite.get(site) ?? 0) + 1);
  },
}).enable();

process.on('SIGWINCH', () => {
  if (!counting) {
    total = 0;
    bySite.clear();
    counting = true;
    return;
  }
  counting = false;
  writeFileSync(join(tmpdir(), `sesame-promises-${process.pid}.json`), JSON.stringify({ total, bySite: [...bySite] }));
});
