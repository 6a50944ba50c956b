import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The embedded database serves one process: PGlite does not lock its folder,
 * and two processes writing to it can corrupt it. This lock file names the
 * owning process; a lock left by a process that no longer runs (a crash, a
 * kill -9) is taken over.
 */
export class DataDirInUseError extends Error {
  constructor(readonly pid: number, dataDir: string) {
    super(
      `The embedded database in ${dataDir} is in use by process ${pid} (is Sesame already running?). ` +
        'It serves one process at a time: stop that process first, or use PostgreSQL (DATABASE_URL).',
    );
    this.name = 'DataDirInUseError';
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock on `dataDir` for this process; answers a function that releases it. */
export function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, 'sesame.lock');
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return () => {
        try {
          if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file);
        } catch {
          // Already gone.
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
      if (Number.isInteger(owner) && isRunning(owner)) throw new DataDirInUseError(owner, dataDir);
      rmSync(file, { force: true });
    }
  }
  throw new Error(`Could not lock ${dataDir}`);
}

/** The running process holding the lock on `dataDir`, if any. */
export function dataDirOwner(dataDir: string): number | undefined {
  try {
    const owner = Number.parseInt(readFileSync(join(dataDir, 'sesame.lock'), 'utf8').trim(), 10);
    return Number.isInteger(owner) && isRunning(owner) ? owner : undefined;
  } catch {
    return undefined;
  }
}
