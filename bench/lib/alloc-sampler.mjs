// Preloaded into a server by `npm run bench -- --profile=<scenario> --alloc` (bench/lib/profile.ts):
// SIGWINCH starts V8's sampling heap profiler, counting objects the collector
// has freed too (so it measures what is allocated, not what stays alive); the
// next SIGWINCH stops it and writes the profile to
// <tmpdir>/sesame-alloc-<pid>.heapprofile (allocationProfileFile below).
// SIGWINCH, not SIGUSR2: the query counter (count-queries.mjs) listens to that one.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const session = new Session();
session.connect();
let sampling = false;
process.on('SIGWINCH', () => {
  if (!sampling) {
    sampling = true;
    session.post('HeapProfiler.startSampling', {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    return;
  }
  sampling = false;
  session.post('HeapProfiler.stopSampling', (error, result) => {
    if (error) process.stderr.write(`allocation sampling failed: ${error.message}\n`);
    else writeFileSync(join(tmpdir(), `sesame-alloc-${process.pid}.heapprofile`), JSON.stringify(result.profile));
  });
});
