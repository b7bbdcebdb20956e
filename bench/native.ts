/**
 * Loads the harness's native addon (`macvtap_bench.node`, typed by `binding.d.ts` beside this file) with
 * node-gyp-build: `build/Release/` of this package in a clone (built by the top-level CMakeLists.txt into
 * `bench/build/Release/`), otherwise `prebuilds/<platform>-<arch>/`, which the packed harness ships.
 *
 * Override: `MACVTAP_BENCH_ADDON`, the absolute path of a `.node` file, loads exactly that file (the sanitizer run
 * points it at the ASan build), as `MACVTAP_ADDON` does for the library's addon.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchBinding } from './binding.js';

const PACKAGE = 'macvtap-bench';

/** This package's root: the nearest directory above this file whose package.json is `macvtap-bench`'s. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj) && (JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === PACKAGE) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`${PACKAGE}: cannot find the package root above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

function loadBinding(): BenchBinding {
  const require = createRequire(import.meta.url);
  const file = process.env.MACVTAP_BENCH_ADDON;
  if (file) {
    if (!isAbsolute(file) || !file.endsWith('.node')) {
      throw new Error(`${PACKAGE}: MACVTAP_BENCH_ADDON must be the absolute path of a .node file, got ${JSON.stringify(file)}`);
    }
    if (!existsSync(file)) throw new Error(`${PACKAGE}: MACVTAP_BENCH_ADDON names ${file}, which does not exist`);
    return require(file) as BenchBinding;
  }
  return (require('node-gyp-build') as (dir: string) => unknown)(packageRoot()) as BenchBinding;
}

/** The harness's native addon. */
export const benchBinding: BenchBinding = loadBinding();
