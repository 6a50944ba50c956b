import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dataDirOwner, DataDirInUseError, lockDataDir } from '../../src/db/data-dir-lock.ts';

describe('the embedded database folder lock', () => {
  it('lets one holder in at a time and names it to the next', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sesame-lock-'));
    const release = lockDataDir(dir);
    expect(readFileSync(join(dir, 'sesame.lock'), 'utf8').trim()).toBe(String(process.pid));
    expect(dataDirOwner(dir)).toBe(process.pid);
    expect(() => lockDataDir(dir)).toThrow(DataDirInUseError);
    expect(() => lockDataDir(dir)).toThrow(`in use by process ${process.pid}`);
    release();
    expect(existsSync(join(dir, 'sesame.lock'))).toBe(false);
    expect(dataDirOwner(dir)).toBeUndefined();
    lockDataDir(dir)();
  });

  it('takes over a lock left by a process that no longer runs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sesame-lock-'));
    writeFileSync(join(dir, 'sesame.lock'), '2147483646\n');
    expect(dataDirOwner(dir)).toBeUndefined();
    const release = lockDataDir(dir);
    expect(dataDirOwner(dir)).toBe(process.pid);
    release();
  });
});
