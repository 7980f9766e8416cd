// Who unlinks shared-memory segments, so that none outlives the program that made it.
//
// - Segments the library names itself (the arenas of Lock, Value... and SharedMemory without a
//   name) belong to the whole program: their names carry the main process's pid
//   (/mp-<rootpid>-<random>). They live while the program runs, wherever they were created,
//   because any process of it may still hand them on. The main process unlinks them all when it
//   exits, also on SIGINT/SIGTERM; after a SIGKILL, the next multiproc program on the machine
//   sweeps the names of dead main processes.
// - Segments created with a name the user chose are unlinked when the program ends (its main
//   process exits), unless unlink() came first, wherever they were created, as Python's resource
//   tracker does (with a warning), which the whole program shares: a child may create one for its
//   parent to read after it exited. A child or thread marks such a name with an empty file
//   /dev/shm/mp-<rootpid>-u<the name in hex>, which the main process's exit (or the sweep after a
//   SIGKILL) reads to unlink the name.

import { closeSync, openSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { native } from './native/binding.ts';
import { randomBytes } from './internal/random.ts';
import { runtime } from './internal/runtime.ts';
import { ExitStep, atExit, atSignalDeath } from './internal/at-exit.ts';
import { isRunning } from './internal/liveness.ts';

const SHM_DIR = '/dev/shm';
const programName = /^mp-(\d+)-[0-9a-f]+$/;
const namedMark = /^mp-(\d+)-u([0-9a-f]+)$/;
const createdHere = new Set<string>();
let swept = false;
let hooked = false;

/** A fresh program-owned segment name (with the leading slash shm_open wants). */
export function programSegmentName(): string {
  sweepStale();
  installExitHooks();
  return `/mp-${runtime().rootPid}-${Buffer.from(randomBytes(8)).toString('hex')}`;
}

/** Records a user-named segment this process or thread created, to unlink when the program ends unless unlinked first. */
export function trackCreated(name: string): void {
  installExitHooks();
  if (isProgramMain() || !mark(name)) createdHere.add(name);
}

export function untrack(name: string): void {
  if (!createdHere.delete(name)) removeMark(markOf(name));
}

const isProgramMain = () => runtime().role === 'main' && runtime().rootPid === process.pid;
const markOf = (name: string) => `mp-${runtime().rootPid}-u${Buffer.from(name.slice(1)).toString('hex')}`;

/** Marks `name` for the main process to unlink; false if it cannot (a name too long for a mark). */
function mark(name: string): boolean {
  try {
    closeSync(openSync(join(SHM_DIR, markOf(name)), 'w', 0o600));
    return true;
  } catch {
    return false;
  }
}

/** Unlinks the segment a mark names, and the mark. */
function unlinkMarked(mark: string, hex: string): void {
  unlinkQuietly(`/${Buffer.from(hex, 'hex').toString()}`);
  removeMark(mark);
}

function removeMark(mark: string): void {
  try {
    rmSync(join(SHM_DIR, mark), { force: true });
  } catch {
    // a name too long for a mark never had one
  }
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
  unlinkSegmentsOf((pid) => !isRunning(pid));
}

/** Unlinks the segments of the programs whose main process `ended` picks, and the named segments they marked. */
function unlinkSegmentsOf(ended: (pid: number) => boolean): void {
  for (const name of listShm()) {
    const marked = namedMark.exec(name);
    const pid = Number((marked ?? programName.exec(name))?.[1]);
    if (!pid || !ended(pid)) continue;
    if (marked) unlinkMarked(name, marked[2] as string);
    else unlinkQuietly(`/${name}`);
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
  if (isProgramMain()) unlinkSegmentsOf((pid) => pid === process.pid);
}

// The 'exit' event covers a normal end and process.exit(), in its last step: after what this
// process sent is flushed (a child still starting attaches its Pipe ends meanwhile). A signal's
// default action would kill the process without it (see atSignalDeath()). The main process
// installs them too when it starts a child, which may create a named segment for it to unlink.
export function installExitHooks(): void {
  if (hooked) return;
  hooked = true;
  atExit(ExitStep.LetGo, cleanUp);
  atSignalDeath(cleanUp);
}
