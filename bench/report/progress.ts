/**
 * Progress of a benchmark run, on stderr: a cli-progress bar per phase with its ETA (periodic plain lines when stderr
 * is not a terminal), and log lines between them. Every subcommand reports through {@link Progress}; `--quiet` gives
 * the silent one.
 */
import cliProgress from 'cli-progress';

/** Where a run reports its progress: `phase` starts a phase of `total` steps, `step` ends one, `end` closes the bar. */
export interface Progress {
  phase(name: string, total: number): void;
  step(what: string): void;
  log(line: string): void;
  end(): void;
}

/** Progress that says nothing (`--quiet`, tests). */
export const SILENT: Progress = { phase: () => undefined, step: () => undefined, log: () => undefined, end: () => undefined };

/** Progress on stderr, or {@link SILENT} when `quiet`. */
export function stderrProgress(quiet: boolean): Progress {
  if (quiet) return SILENT;
  let bar: cliProgress.SingleBar | null = null;
  const end = (): void => {
    bar?.stop();
    bar = null;
  };
  return {
    phase(name, total) {
      end();
      bar = new cliProgress.SingleBar({
        format: `bench: ${name.padEnd(13)} [{bar}] {value}/{total} · {duration_formatted} elapsed, ETA {eta_formatted} · {what}`,
        stream: process.stderr,
        noTTYOutput: true,
        notTTYSchedule: 5000,
        etaBuffer: 50,
        hideCursor: false,
      }, cliProgress.Presets.legacy);
      bar.start(total, 0, { what: '' });
    },
    step(what) {
      bar?.increment(1, { what });
    },
    log(line) {
      process.stderr.write(`bench: ${line}\n`);
    },
    end,
  };
}
