import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { bundleModules } from './build.ts';

/**
 * On-CPU profiles of the whole machine with Linux `perf` (`--perf`): what
 * every process spends while it is running, sampled by the kernel's cpu-clock
 * (so a process waiting for a core is not charged, which V8's own profiler,
 * sampling wall time, does). The server runs with
 * `--perf-basic-prof-only-functions`, so its JavaScript frames have names.
 */
export async function recordMachine(options: { file: string; delayMs: number; durationMs: number }): Promise<void> {
  const seconds = ((options.delayMs + options.durationMs) / 1000).toFixed(1);
  const args = ['record', '-a', '-g', '-e', 'cpu-clock', '-F', '499', '-D', String(options.delayMs), '-o', options.file, '--', 'sleep', seconds];
  await new Promise<void>((resolve, reject) => {
    const child = spawn('perf', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.once('error', (error) => reject(new Error(`perf could not start (${error.message}); install Debian's linux-perf`)));
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`perf record exited ${code}: ${stderr.trim()}`))));
  });
}

/**
 * What each PostgreSQL process is, read from its title (`postgres: … autovacuum
 * worker`, `… walwriter`, a backend's `user database host state`), while the
 * processes still exist: right after a recording.
 */
export function postgresRoles(): Map<number, string> {
  const roles = new Map<number, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let title: string;
    try {
      title = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      continue;
    }
    const role = /^postgres: (?:\S+: )?(.*)$/.exec(title)?.[1];
    if (!role) continue;
    roles.set(Number(entry), /^(autovacuum|walwriter|checkpointer|background writer|logical replication|stats|archiver|walsender)/.exec(role)?.[1] ?? 'backends');
  }
  return roles;
}

export type PerfRow = { name: string; percent: number };
export type MachineProfile = {
  samples: number;
  byProcess: PerfRow[];
  server: { self: PerfRow[]; inclusive: PerfRow[]; byLayer: PerfRow[]; javascript: PerfRow[]; javascriptByModule: PerfRow[] };
  postgres: PerfRow[];
};

const isJavaScript = (dso: string) => /\/perf-\d+\.map$/.test(dso);

const IDLE = 'idle';

/** A frame's readable name: bundle lines become their source module, node_modules paths are cut to the package. */
function frameNamer(bundleFile: string | undefined): (symbol: string, dso: string) => string {
  const bundle = bundleFile && resolve(bundleFile);
  const moduleAt = bundle ? bundleModules(readFileSync(bundle, 'utf8')) : undefined;
  return (symbol, dso) => {
    // The file is the last token: a name may hold a space (`get ip`).
    const js = /^JS:[*~^+]?(.*) (?:file:\/\/)?(\S+?):(\d+):\d+$/.exec(symbol);
    if (js) {
      const [, fn, file, line] = js;
      if (moduleAt && bundle && file === bundle) return `${fn || '(anonymous)'} ${moduleAt(Number(line) - 1)}`;
      return `${fn || '(anonymous)'} ${file!.replace(/^.*node_modules\//, '').replace(/^.*\/(src|bench)\//, '$1/')}:${line}`;
    }
    if (symbol === '[unknown]') return `[unknown] (${dso.replace(/^.*\//, '')})`;
    return symbol.replace(/\+0x[0-9a-f]+$/, '');
  };
}

/** The module a named JavaScript frame ran in: `src/…` and `packages/…` files and `node:…` modules whole, else the package. */
function moduleOf(name: string): string {
  const where = /\s(\S+?)(?::\d+)?$/.exec(name)?.[1] ?? name;
  if (/^(src|packages|bench)\//.test(where) || where.startsWith('node:')) return where;
  return /^((?:@[^/]+\/)?[^/:]+)/.exec(where)?.[1] ?? where;
}

/** Where a leaf frame belongs: JavaScript by package or folder, or the native layer it runs in. */
function layerOf(name: string, dso: string): string {
  if (dso.includes('kernel')) return 'kernel (syscalls, network, scheduling)';
  if (isJavaScript(dso)) {
    const module = moduleOf(name);
    if (module.startsWith('node:')) return 'JavaScript node';
    return `JavaScript ${/^(src|packages|bench)\//.test(module) ? module.split('/').slice(0, 2).join('/') : module}`;
  }
  if (/libcrypto|libssl/.test(dso)) return 'OpenSSL';
  if (/libc\.so|libstdc|libm\.so|ld-linux/.test(dso)) return 'libc';
  if (/\bnode$/.test(dso)) return name.startsWith('Builtins_') ? 'V8 builtins' : /(Heap|GC|Scavenge|Mark|Sweep|Evacuat|Compact)/.test(name) ? 'V8 garbage collector' : 'node/V8 native';
  return dso.replace(/^.*\//, '') || 'other';
}

/**
 * Reads `perf script` of a recording and answers: how the machine's CPU was
 * split between the server, PostgreSQL, the load generator and the rest;
 * inside the server, self and inclusive time per function and self time per
 * layer; inside PostgreSQL, self time per function.
 */
export async function summarizeMachine(
  file: string,
  options: { serverPid: number; loadgenPid: number; bundle?: string; top?: number; postgresRoles?: Map<number, string> },
): Promise<MachineProfile> {
  const name = frameNamer(options.bundle);
  const perProcess = new Map<string, number>();
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const layers = new Map<string, number>();
  const postgres = new Map<string, number>();
  const javascript = new Map<string, number>();
  const javascriptByModule = new Map<string, number>();
  let samples = 0;
  let serverSamples = 0;
  let postgresSamples = 0;
  const add = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);

  let header: { comm: string; pid: number } | undefined;
  let frames: Array<{ name: string; dso: string }> = [];
  const flush = () => {
    if (!header) return;
    samples += 1;
    const { comm, pid } = header;
    const who = pid === 0 ? IDLE : pid === options.serverPid ? 'Sesame server' : pid === options.loadgenPid ? 'load generator' : comm.startsWith('postgres') ? 'PostgreSQL' : `other: ${comm}`;
    add(perProcess, who === 'PostgreSQL' ? `PostgreSQL ${options.postgresRoles?.get(pid) ?? '(ended before the summary)'}` : who);
    const leaf = frames[0];
    if (pid === options.serverPid && leaf) {
      serverSamples += 1;
      add(self, leaf.name);
      add(layers, layerOf(leaf.name, leaf.dso));
      for (const key of new Set(frames.map((frame) => frame.name))) add(inclusive, key);
      // As V8's profiler counts: a builtin, the runtime or a syscall is charged to the JavaScript function that called it.
      const caller = frames.find((frame) => isJavaScript(frame.dso));
      add(javascript, caller ? caller.name : '(no JavaScript on the stack: GC threads, libuv pool, event loop)');
      if (caller) add(javascriptByModule, moduleOf(caller.name));
    } else if (who === 'PostgreSQL' && leaf) {
      postgresSamples += 1;
      add(postgres, leaf.name);
    }
    header = undefined;
    frames = [];
  };
  const script = spawn('perf', ['script', '-i', file, '-F', 'comm,pid,ip,sym,dso'], { stdio: ['ignore', 'pipe', 'ignore'] });
  for await (const line of createInterface({ input: script.stdout })) {
    if (!line.trim()) {
      flush();
      continue;
    }
    if (!line.startsWith('\t') && !line.startsWith(' ')) {
      flush();
      const match = /^(.*?)\s+(\d+)\s*$/.exec(line);
      if (match) header = { comm: match[1]!, pid: Number(match[2]) };
      continue;
    }
    const frame = /^\s*[0-9a-f]+ (.*) \((.*)\)$/.exec(line);
    if (frame) frames.push({ name: name(frame[1]!, frame[2]!), dso: frame[2]! });
  }
  flush();
  const rows = (map: Map<string, number>, of: number) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, options.top ?? 40)
      .map(([key, count]) => ({ name: key, percent: Math.round((count / Math.max(1, of)) * 1000) / 10 }));
  return {
    samples,
    byProcess: rows(perProcess, samples),
    server: {
      self: rows(self, serverSamples),
      inclusive: rows(inclusive, serverSamples),
      byLayer: rows(layers, serverSamples),
      javascript: rows(javascript, serverSamples),
      javascriptByModule: rows(javascriptByModule, serverSamples),
    },
    postgres: rows(postgres, postgresSamples),
  };
}

export function renderMachine(profile: MachineProfile): string {
  const table = (title: string, of: string, rows: PerfRow[]) =>
    [`### ${title}`, '', `| % of ${of} | where |`, '| ---: | --- |', ...rows.map((row) => `| ${row.percent} | \`${row.name}\` |`)].join('\n');
  return [
    `${profile.samples} cpu-clock samples over both cores (499 Hz each); ${IDLE} is a core with nothing to run.`,
    '',
    table('The machine by process', 'all samples', profile.byProcess),
    '',
    table('Sesame server: self time by layer', 'the server', profile.server.byLayer),
    '',
    table('Sesame server: by the JavaScript module running (native work charged to its caller)', 'the server', profile.server.javascriptByModule),
    '',
    table('Sesame server: by the JavaScript function running (native work charged to its caller)', 'the server', profile.server.javascript),
    '',
    table('Sesame server: self time by function', 'the server', profile.server.self),
    '',
    table('Sesame server: inclusive time by function', 'the server', profile.server.inclusive),
    '',
    table('PostgreSQL: self time by function', 'PostgreSQL', profile.postgres),
  ].join('\n');
}

// `node --import tsx bench/lib/perf.ts <perf.data> <server pid> [load generator pid] [bundle]`: summarize a recording again.
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\/bench\//, '/bench/'))) {
  const [file, serverPid, loadgenPid, bundle] = process.argv.slice(2);
  if (!file || !serverPid) throw new Error('usage: perf.ts <perf.data> <server pid> [load generator pid] [bundle]');
  void summarizeMachine(file, { serverPid: Number(serverPid), loadgenPid: Number(loadgenPid ?? -1), bundle }).then((profile) => process.stdout.write(`${renderMachine(profile)}\n`));
}
