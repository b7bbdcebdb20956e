/**
 * The tap-node state directories (`/run/macvtap/nodes`, `/dev/macvtap`, and `/run/macvtap` above the first) are the
 * library's, made on first use. A test file that makes tap nodes leaves the machine as it found it: each directory
 * that did not exist before the file is removed after it, when empty (files run one at a time: vitest.config.ts).
 */
import * as fs from 'node:fs';
import { afterAll, beforeAll } from 'vitest';
import { TAP_NODE_DEV_DIR, TAP_NODE_DIR } from '../../lib/tapnode.js';

/** Deepest first, so a parent is empty by the time it is tried. */
const DIRS = [TAP_NODE_DIR, '/run/macvtap', TAP_NODE_DEV_DIR];

/** Call once at the top level of a test file that makes tap nodes. */
export function tidyTapNodeDirs(): void {
  let absent: string[] = [];
  beforeAll(() => {
    absent = DIRS.filter((d) => !fs.existsSync(d));
  });
  afterAll(() => {
    for (const d of absent) {
      try {
        fs.rmdirSync(d);
      } catch (e) {
        // Not empty: something is left in it, which the file's own tests report; never removed recursively here.
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') process.stderr.write(`tidyTapNodeDirs: ${d} kept: ${String(e)}\n`);
      }
    }
  });
}
