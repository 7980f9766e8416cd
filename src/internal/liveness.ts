// Whether a process still runs: the test that finds a lock's or a pipe end's holder dead.

/** True unless no process has this pid (EPERM: it runs, under another user). A reused pid reads as running. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
