/**
 * Loads the harness's native addon (`macvtap_bench.node`, typed by `binding.d.ts` beside this file) with
 * node-gyp-build: `build/Release/` of this package in a clone (built by the top-level CMakeLists.txt into
 * `bench/build/Release/`), otherwise `prebuilds/<platform>-<arch>/`, which the packed harness ships.
 *
 * Override: `MACVTAP_BENCH_ADDON`, the absolute path of a `.node` file, loads exactly that file (the sanitizer run
 * points it at the ASan build), as `MACVTAP_ADDON` does for the library's addon.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { BenchBinding } from './binding.js';
import { PACKAGE, packageRoot } from './package-root.js';

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
