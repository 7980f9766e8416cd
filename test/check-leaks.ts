// Runs after the whole suite (npm test): no shared-memory segment of a finished multiproc program
// may be left in /dev/shm. Program-owned names carry their main process's pid (see
// src/resource-tracker.ts); every test process has exited by now, so a name whose pid no longer
// runs is a leak. Exits 1 and lists them.

import { readdirSync } from 'node:fs';

const leaked = readdirSync('/dev/shm').filter((name) => {
  const pid = Number(/^mp-(\d+)-/.exec(name)?.[1]);
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
});

if (leaked.length > 0) {
  console.error(`check-leaks: ${leaked.length} shared-memory segment(s) outlived their program: ${leaked.map((n) => `/dev/shm/${n}`).join(', ')}`);
  process.exit(1);
}
console.log('check-leaks: no shared-memory segment outlived its program');
