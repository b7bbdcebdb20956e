/**
 * The fixture of the link-level suites: a throwaway namespace per test with veth `l0` (the physical interface
 * stand-in) ↔ `l1`, both up, destroyed after the test (also when it failed), and every namespace the testbed made
 * destroyed after the file.
 */
import { afterAll } from 'vitest';
import { destroyAll, TestNetns } from '../../bench/testbed/netns.js';
import { cleanupStack } from './suite.js';

/** What {@link vethHostFixture} gives a test file. */
export interface VethHostFixture {
  /** A new namespace with veth `l0` ↔ `l1`, both up; destroyed after the current test. */
  host(): TestNetns;
  /** Destroys `space` (another namespace or testbed the test made) after the current test, in reverse order. */
  track<T extends { destroy(): void }>(space: T): T;
}

/** Call once at the top level of a test file (it registers the file's afterEach/afterAll hooks). */
export function vethHostFixture(): VethHostFixture {
  const defer = cleanupStack();
  afterAll(() => destroyAll());
  const track = <T extends { destroy(): void }>(space: T): T => {
    defer(() => space.destroy());
    return space;
  };
  return {
    host: () => {
      const ns = track(TestNetns.create());
      ns.veth('l0', 'l1');
      return ns;
    },
    track,
  };
}
