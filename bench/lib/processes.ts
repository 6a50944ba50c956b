import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';

/**
 * Servers under test run as child processes: their memory and CPU can be read
 * from /proc, and the load generator does not share their event loop.
 */
export type ServerProcess = {
  name: string;
  pid: number;
  url: string;
  logFile: string;
  /** Where the query counter (bench/lib/count-queries.mjs) writes, when preloaded. */
  queryLog?: string;
  child: ChildProcess;
  stop: () => Promise<void>;
};

export const repoRoot = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Only what a server needs from our own environment: nothing like DATABASE_URL leaks in by accident. */
function baseEnv(): Record<string, string> {
  const keep = ['PATH', 'HOME', 'LANG', 'TMPDIR', 'NODE_EXTRA_CA_CERTS'];
  return Object.fromEntries(keep.flatMap((name) => (process.env[name] ? [[name, process.env[name]!]] : [])));
}

const running = new Set<ServerProcess>();

export async function startServer(options: {
  name: string;
  /** Entry file, relative to the repository root. */
  script: string;
  port: number;
  env: Record<string, string>;
  readyPath: string;
  logDir: string;
  /** Extra node flags (e.g. --cpu-prof). */
  nodeFlags?: string[];
  /** Run through tsx (default, for TypeScript such as bench/baseline.ts); false for plain JavaScript such as the bundle. */
  tsx?: boolean;
  /** Modules imported before the entry file (after tsx when it runs, so then they may be TypeScript). */
  preload?: string[];
  queryLog?: string;
  timeoutMs?: number;
}): Promise<ServerProcess> {
  const logFile = join(options.logDir, `${options.name}.log`);
  const out = openSync(logFile, 'a');
  const preload = (options.preload ?? []).flatMap((module) => ['--import', module]);
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), ...(options.tsx === false ? [] : ['--import', 'tsx']), ...preload, options.script], {
    cwd: repoRoot,
    env: { ...baseEnv(), ...options.env, PORT: String(options.port), ...(options.queryLog ? { BENCH_QUERY_LOG: options.queryLog } : {}) },
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  const url = `http://127.0.0.1:${options.port}`;
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const server: ServerProcess = {
    name: options.name,
    pid: child.pid!,
    url,
    logFile,
    queryLog: options.queryLog,
    child,
    stop: async () => {
      running.delete(server);
      if (exited) return;
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const forced = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await done;
      clearTimeout(forced);
    },
  };
  running.add(server);
  const deadline = Date.now() + (options.timeoutMs ?? 90_000);
  while (Date.now() < deadline) {
    if (exited) break;
    try {
      const response = await request(`${url}${options.readyPath}`, { headersTimeout: 2_000, bodyTimeout: 2_000 });
      await response.body.dump();
      if (response.statusCode === 200) return server;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  await server.stop();
  const log = readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n');
  throw new Error(`${options.name} did not become ready (${exited ? 'it exited' : 'timeout'}); last log lines:\n${log}`);
}

/** Stops every server this process started (on exit or interruption). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((server) => server.stop()));
}

const statusField = (pid: number, field: string): number => {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : 0;
};

/** Resident memory now and its high-water mark, in MB. */
export function memoryOf(pid: number): { rssMb: number; hwmMb: number } {
  try {
    return { rssMb: statusField(pid, 'VmRSS'), hwmMb: statusField(pid, 'VmHWM') };
  } catch {
    return { rssMb: 0, hwmMb: 0 };
  }
}

const TICKS_PER_SECOND = 100;

/** User + system CPU time of a process, in ms. */
export function cpuMsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of /proc/<pid>/stat (utime, stime); the slice starts at field 3.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Samples the servers' RSS while load runs; `stop()` answers the highest peak of any one process, in MB. */
export function sampleMemory(pids: number[], everyMs = 200): { stop: () => number } {
  let peak = 0;
  const take = () => {
    for (const pid of pids) peak = Math.max(peak, memoryOf(pid).rssMb);
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      take();
      return peak;
    },
  };
}
