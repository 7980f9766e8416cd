// Runs a program as a separate Node process and collects what it printed, for tests that must see
// a process's own stdout/stderr and exit code (an entry module, a child's error report). Every
// run carries a tag in its environment, inherited by whatever it starts, so that a test can
// check afterwards that nothing it started is left, however it was re-parented.

import { createHook } from 'node:async_hooks';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';

export const TSX_IMPORT = ['--import', 'tsx'];

/** The tags of every run so far, for killRuns(). */
const runs = new Set<string>();

export interface RunOptions {
  /** Node options before the script. @default ['--import', 'tsx'] */
  execArgv?: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** The program itself instead of `node` (say, the tsx CLI). */
  command?: string;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The value of MP_RUN_TAG in the environment of the run and everything it started. */
  tag: string;
}

/** The environment of a run: ours without the test runner's marker, plus the run's tag. */
export function runEnv(tag: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra, MP_RUN_TAG: tag };
  delete env.NODE_TEST_CONTEXT;
  delete env.NODE_OPTIONS;
  return env;
}

/** Runs `node [...execArgv] file ...args` to its exit; resolves with its exit code and output. */
export async function runScript(file: string, args: string[] = [], options: RunOptions = {}): Promise<RunResult> {
  const tag = randomUUID();
  runs.add(tag);
  const command = options.command ?? process.execPath;
  const argv = options.command ? [file, ...args] : [...(options.execArgv ?? TSX_IMPORT), file, ...args];
  const child = spawn(command, argv, { cwd: options.cwd, env: runEnv(tag, options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // 'close' comes after 'exit' and after both pipes ended: all the output is in.
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stdout, stderr, tag };
}

/** The lines of `text`, without the empty last one. */
export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

/** Running processes (zombies excluded) whose environment carries MP_RUN_TAG=`tag`. */
export function taggedProcesses(tag: string): number[] {
  const needle = `\0MP_RUN_TAG=${tag}\0`;
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
        if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') return false;
        return `\0${readFileSync(`/proc/${pid}/environ`, 'latin1')}`.includes(needle);
      } catch {
        return false; // gone, or not ours to read: not one of the run's processes either way
      }
    });
}

/** SIGKILLs every process of every run so far: the cleanup of a test that failed half-way. */
export function killRuns(): void {
  for (const pid of [...runs].flatMap(taggedProcesses)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** How many child processes and worker threads `body` created while it ran (synchronously). */
export function countSpawns(body: () => void): number {
  let count = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'PROCESSWRAP' || type === 'WORKER') count++;
    },
  });
  hook.enable();
  try {
    body();
  } finally {
    hook.disable();
  }
  return count;
}
