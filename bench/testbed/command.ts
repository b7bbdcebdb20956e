/** Running the tools the testbed is built with (`ip`, `apt-get`, `dpkg`, `find`, …), synchronously. */
import { execFileSync } from 'node:child_process';

/**
 * Runs `cmd` with `args` and returns its stdout; throws with the command line and its stderr in the message when it
 * fails or outlives `timeoutMs` (default: no limit).
 */
export function run(cmd: string, args: string[], opts: { input?: string; cwd?: string; timeoutMs?: number } = {}): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8', input: opts.input, cwd: opts.cwd, timeout: opts.timeoutMs, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 << 20,
    });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${err.stderr?.trim() || err.message}`);
  }
}
