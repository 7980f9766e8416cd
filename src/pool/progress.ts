// The progress bar of map/imap with { progress: true }: items done, rate and ETA on a terminal
// (cli-progress, loaded only when asked for), nothing when stdout is not a TTY.

import { libraryRequire } from '../internal/module-loaders.ts';
import { monotonicMs } from '../internal/clock.ts';

export interface Progress {
  tick(items: number): void;
  stop(): void;
}

const silent: Progress = { tick() {}, stop() {} };

export function progressBar(enabled: boolean, total: number | undefined): Progress {
  if (!enabled || !process.stdout.isTTY) return silent;
  const { SingleBar, Presets } = libraryRequire()('cli-progress') as typeof import('cli-progress');
  const known = total !== undefined;
  const bar = new SingleBar(
    {
      format: known ? ' {bar} {percentage}% | {value}/{total} items | {rate}/s | ETA {eta_formatted}' : ' {value} items | {rate}/s',
      hideCursor: true,
      clearOnComplete: false,
    },
    Presets.shades_classic,
  );
  const started = monotonicMs();
  let done = 0;
  bar.start(total ?? 0, 0, { rate: '0' });
  return {
    tick(items: number) {
      done += items;
      const seconds = (monotonicMs() - started) / 1000;
      bar.update(done, { rate: seconds > 0 ? (done / seconds).toFixed(1) : '0' });
    },
    stop() {
      bar.stop();
    },
  };
}
