// Who unlinks shared-memory segments, so that none outlives the program that made it.
//
// - Segments the library names itself (the arenas of Lock, Value... and SharedMemory without a
//   name) belong to the whole program: their names carry the main process's pid
//   (/mp-<rootpid>-<random>). They live while the program runs, wherever they were created,
//   because any process of it may still hand them on. The main process unlinks them all when it
//   exits, also on SIGINT/SIGTERM; after a SIGKILL, the next multiproc program on the machine
//   sweeps the names of dead main processes.
// - Segments created with a name the user chose are unlinked when the process that created them
//   exits, unless unlink() came first (Python's resource tracker does this, with a warning).

import { readdirSync } from 'node:fs';
import { native } from './native/binding.ts';
import { randomBytes } from './internal/random.ts';
import { runtime } from './internal/runtime.ts';
import { ExitStep, atExit, atSignalDeath } from './internal/at-exit.ts';
import { isRunning } from './internal/liveness.ts';

const SHM_DIR = '/dev/shm';
const programName = /^mp-(\d+)-[0-9a-f]+$/;
const createdHere = new Set<string>();
let swept = false;
let hooked = false;

/** A fresh program-owned segment name (with the leading slash shm_open wants). */
export function programSegmentName(): string {
  sweepStale();
  installExitHooks();
  return `/mp-${runtime().rootPid}-${Buffer.from(randomBytes(8)).toString('hex')}`;
}

/** Records a user-named segment this process created, to unlink at its exit unless unlinked first. */
export function trackCreated(name: string): void {
  createdHere.add(name);
  installExitHooks();
}

export function untrack(name: string): void {
  createdHere.delete(name);
}

/** Unlinks a segment name, ignoring one that is already gone. */
export function unlinkQuietly(name: string): void {
  try {
    native().shmUnlink(name);
  } catch (error) {
    // ENOENT: someone (the user, another process, a sweep) unlinked it first; that is the goal.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** The segments of this program that exist now (for tests and diagnostics). */
export function programSegments(rootPid = runtime().rootPid): string[] {
  return listShm().filter((name) => programName.exec(name)?.[1] === String(rootPid)).map((name) => `/${name}`);
}

// Unlinks the segments of main processes that no longer run (SIGKILLed programs).
function sweepStale(): void {
  if (swept) return;
  swept = true;
  for (const name of listShm()) {
    const pid = Number(programName.exec(name)?.[1]);
    if (pid && !isRunning(pid)) unlinkQuietly(`/${name}`);
  }
}

function listShm(): string[] {
  try {
    return readdirSync(SHM_DIR);
  } catch {
    return []; // no /dev/shm: shm_open will fail with its own clear error
  }
}


function cleanUp(): void {
  for (const name of createdHere) unlinkQuietly(name);
  createdHere.clear();
  if (runtime().role === 'main' && runtime().rootPid === process.pid) {
    for (const name of programSegments()) unlinkQuietly(name);
  }
}

// The 'exit' event covers a normal end and process.exit(), in its last step: after what this
// process sent is flushed (a child still starting attaches its Pipe ends meanwhile). A signal's
// default action would kill the process without it (see atSignalDeath()).
function installExitHooks(): void {
  if (hooked) return;
  hooked = true;
  atExit(ExitStep.LetGo, cleanUp);
  atSignalDeath(cleanUp);
}
