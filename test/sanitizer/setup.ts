/**
 * Setup file of the sanitizer run (test/sanitizer/vitest.config.ts). vitest stops a fork worker with SIGTERM, and a
 * process killed by a signal never reaches LeakSanitizer's exit-time check, so leaks in the worker that ran the test
 * file (where the addon does most of its work) would go unseen (checked: a leak injected into the addon was only
 * reported once this was in place). Ending through process.exit() runs the check; its report lands in the runner's
 * report directory and fails the run.
 */
const key = Symbol.for('macvtap.sanitizer.exitOnSigterm');
const g = globalThis as { [key]?: boolean };
if (!g[key]) {
  g[key] = true;
  process.once('SIGTERM', () => process.exit(0));
}
