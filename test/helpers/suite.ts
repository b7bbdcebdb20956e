/**
 * Test-framework glue: suites that need root or a tool are skipped loudly (never silently, and never in CI), and a
 * per-test stack of cleanup steps. The namespaces, frames and peers the suites use are the testbed's
 * (bench/testbed/), shared with the benchmark harness.
 */
import { afterEach, describe } from 'vitest';

/** True when the suite may create namespaces and links. */
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

let warned = false;
/**
 * `describe` for suites that need root. When not root the suite is skipped loudly (a warning naming the suite and
 * why); in CI (`CI=true`) not being root is an error, so privileged suites can never be skipped there silently.
 */
export function describePrivileged(name: string, fn: () => void): void {
  if (!isRoot) {
    if (process.env.CI === 'true') throw new Error(`${name}: privileged suite needs root, and CI must run it`);
    if (!warned) {
      warned = true;
      process.stderr.write(`\n*** SKIPPING privileged suites: not root (they create network namespaces and links) ***\n`);
    }
    describe.skip(`${name} [SKIPPED: needs root]`, fn);
    return;
  }
  describe(name, fn);
}

/**
 * {@link describePrivileged} for suites that also need a tool (QEMU, libvirtd, …): `missing` is why it is not there,
 * or `null`. Without it the suite is skipped loudly, and under `CI=true` that is an error: CI installs every tool.
 */
export function describeNeeding(name: string, missing: string | null, fn: () => void): void {
  if (missing) {
    if (process.env.CI === 'true') throw new Error(`${name}: ${missing}, and CI must run it`);
    process.stderr.write(`\n*** SKIPPING ${name}: ${missing} ***\n`);
    describe.skip(`${name} [SKIPPED: ${missing}]`, fn);
    return;
  }
  describePrivileged(name, fn);
}

/**
 * A per-test stack of cleanup steps, undone in reverse order after each test (also when it failed); a failing step is
 * reported and the others still run. Call once at the top level of a test file; push steps with the returned function.
 */
export function cleanupStack(): (step: () => unknown) => void {
  let undo: Array<() => unknown> = [];
  afterEach(async () => {
    const steps = undo.reverse();
    undo = [];
    for (const step of steps) {
      try {
        await step();
      } catch (e) {
        process.stderr.write(`cleanup step failed: ${String(e)}\n`);
      }
    }
  });
  return (step) => {
    undo.push(step);
  };
}
