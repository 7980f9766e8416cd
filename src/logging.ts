// The library's own log (Python's multiprocessing.util: get_logger(), log_to_stderr()): what it
// does with processes, pools and managers, for a program that wants to see it. Silent until the
// program asks for it: before getLogger(), each log call is one check of an unset variable, as in
// Python (`if _logger:`). Children started afterwards inherit the level and the stderr handler
// (the start message carries them, as Python's spawn preparation data does); a program's own
// handlers are functions of this process and stay here.

import { inspect } from 'node:util';
import { describe, invalidArgument } from './errors.ts';

/** Python's levels, with its multiprocessing-only SUBDEBUG and SUBWARNING. */
export const logLevels = {
  subdebug: 5,
  debug: 10,
  info: 20,
  subwarning: 25,
  warning: 30,
  error: 40,
  critical: 50,
} as const;

export type LogLevel = keyof typeof logLevels;

/** One line of the log, as a handler gets it. */
export interface LogRecord {
  /** The level's name, as Python prints it: 'DEBUG', 'SUBWARNING'. */
  levelName: Uppercase<LogLevel>;
  /** The level's number (Python's levelno): 5 to 50. */
  level: number;
  message: string;
  /** The name of the process (or thread) that logged it: 'MainProcess', 'Process-1', 'PoolWorker-2'. */
  processName: string;
  pid: number;
  /** Milliseconds since the epoch. */
  time: number;
}

export type LogHandler = (record: LogRecord) => void;

/** What a child inherits of its parent's logger (the start message's `log`). */
export interface InheritedLog {
  level: number;
  toStderr: boolean;
}

/** The library's logger: `getLogger()`, Python's `multiprocessing.get_logger()`. */
export class Logger {
  readonly name = 'multiproc';
  /** Records below this level are dropped. WARNING until set, as Python's effective level. */
  level: number = logLevels.warning;
  readonly #handlers = new Set<LogHandler>();
  #toStderr = false;

  /** Sets the level: a name ('debug') or a number (Python's `logging.DEBUG` is 10). */
  setLevel(level: LogLevel | number): void {
    this.level = levelNumber(level, 'Logger.setLevel()');
  }

  isEnabledFor(level: LogLevel | number): boolean {
    return levelNumber(level, 'Logger.isEnabledFor()') >= this.level;
  }

  /** Calls `handler` with each record at or above the level. Adding a handler twice adds it once. */
  addHandler(handler: LogHandler): void {
    if (typeof handler !== 'function') throw invalidArgument(`Logger.addHandler(): expected a function (record) => void, got ${describe(handler)}.`);
    this.#handlers.add(handler);
  }

  removeHandler(handler: LogHandler): void {
    this.#handlers.delete(handler);
  }

  subdebug(message: string): void {
    this.log(logLevels.subdebug, message);
  }

  debug(message: string): void {
    this.log(logLevels.debug, message);
  }

  info(message: string): void {
    this.log(logLevels.info, message);
  }

  subwarning(message: string): void {
    this.log(logLevels.subwarning, message);
  }

  warning(message: string): void {
    this.log(logLevels.warning, message);
  }

  error(message: string): void {
    this.log(logLevels.error, message);
  }

  critical(message: string): void {
    this.log(logLevels.critical, message);
  }

  log(level: LogLevel | number, message: string): void {
    const number = typeof level === 'number' ? level : levelNumber(level, 'Logger.log()');
    if (number < this.level || this.#handlers.size === 0) return;
    const record: LogRecord = { levelName: levelName(number), level: number, message: String(message), processName: processName(), pid: process.pid, time: Date.now() };
    for (const handler of this.#handlers) {
      try {
        handler(record);
      } catch (error) {
        // A failing handler must not break the library call that logged (a pool's message
        // handling), nor end the program: as Python's logging, it is reported and logging goes on.
        process.stderr.write(`--- multiproc: a log handler threw (the record: ${record.levelName} ${record.message}) ---\n${inspect(error)}\n`);
      }
    }
  }

  /** Adds the stderr handler (once): Python's log_to_stderr(). */
  toStderr(): void {
    if (this.#toStderr) return;
    this.#toStderr = true;
    this.addHandler(writeToStderr);
  }

  /** What a child started now inherits. */
  inherited(): InheritedLog {
    return { level: this.level, toStderr: this.#toStderr };
  }
}

const kLogger = Symbol.for('multiproc.logger');
type WithLogger = typeof globalThis & { [kLogger]?: Logger };

// On globalThis, as the runtime is (runtime.ts): two copies of the library in one thread share it.
function existingLogger(): Logger | undefined {
  return (globalThis as WithLogger)[kLogger];
}

/** The library's logger (Python's `multiprocessing.get_logger()`), made on the first call. */
export function getLogger(): Logger {
  const global = globalThis as WithLogger;
  if (!global[kLogger]) {
    global[kLogger] = new Logger();
    process.once('exit', () => info(() => 'process shutting down'));
  }
  return global[kLogger];
}

/**
 * Turns the library's log on, to stderr, as `[LEVEL/processName] message` (Python's
 * `log_to_stderr(level)`), and returns the logger. Calling it again adds no second handler.
 * Processes and threads started afterwards log to their stderr too, at the same level.
 */
export function logToStderr(level?: LogLevel | number): Logger {
  const logger = getLogger();
  if (level !== undefined) logger.setLevel(level);
  logger.toStderr();
  return logger;
}

/** For the start message: the parent's logger, if the program made one. */
export function inheritedLog(): InheritedLog | null {
  return existingLogger()?.inherited() ?? null;
}

/** In a child: takes on the parent's logger. */
export function inheritLog(log: InheritedLog | null): void {
  if (!log) return;
  const logger = getLogger();
  logger.level = log.level;
  if (log.toStderr) logger.toStderr();
}

// The library's own calls: one check when no logger was made, and the message made only when it is logged.
function logAt(level: number, message: () => string): void {
  const logger = existingLogger();
  if (logger && logger.level <= level) logger.log(level, message());
}

export const debug = (message: () => string): void => logAt(logLevels.debug, message);
export const info = (message: () => string): void => logAt(logLevels.info, message);
export const subwarning = (message: () => string): void => logAt(logLevels.subwarning, message);

function levelNumber(level: unknown, where: string): number {
  if (typeof level === 'number' && Number.isFinite(level)) return level;
  if (typeof level === 'string' && Object.hasOwn(logLevels, level.toLowerCase())) return logLevels[level.toLowerCase() as LogLevel];
  throw invalidArgument(`${where}: expected a level name (${Object.keys(logLevels).join(', ')}) or a number, got ${describe(level)}.`);
}

function levelName(level: number): Uppercase<LogLevel> {
  let name: LogLevel = 'subdebug';
  for (const [candidate, number] of Object.entries(logLevels) as [LogLevel, number][]) if (level >= number) name = candidate;
  return name.toUpperCase() as Uppercase<LogLevel>;
}

let nameOfThisProcess: (() => string) | undefined;

/** process.ts tells how to name this process (it cannot be imported here: it imports this module). */
export function nameProcessesWith(name: () => string): void {
  nameOfThisProcess = name;
}

function processName(): string {
  return nameOfThisProcess?.() ?? 'MainProcess';
}

function writeToStderr(record: LogRecord): void {
  process.stderr.write(`[${record.levelName}/${record.processName}] ${record.message}\n`);
}
