/**
 * Loads the harness's native addon (`macvtap_bench.node`, typed by `binding.d.ts` beside this file) the way the library
 * loads its own: node-gyp-build from this package's root — `build/Release/` in a clone (the top-level CMakeLists.txt
 * builds it into `bench/build/Release/`), otherwise `prebuilds/<platform>-<arch>/`, which the packed harness ships —
 * or exactly the file named by `MACVTAP_BENCH_ADDON` (the sanitizer run points it at the ASan build).
 */
import { loadAddon } from 'macvtap/internal';
import type { BenchBinding } from './binding.js';

/** The harness's native addon. */
export const benchBinding = loadAddon(import.meta.url, 'macvtap-bench', 'MACVTAP_BENCH_ADDON') as BenchBinding;
