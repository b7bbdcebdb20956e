/** Where this package (`macvtap-bench`) lives: its root holds the addon's build and prebuilds, and the testbed's cache. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's name, as its package.json says. */
export const PACKAGE = 'macvtap-bench';

/**
 * The package root: the nearest directory above this file whose package.json is `macvtap-bench`'s — `bench/` in a
 * clone, from the sources and from dist/ alike; the package's directory under node_modules when installed.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj) && (JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === PACKAGE) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`${PACKAGE}: cannot find the package root above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}
