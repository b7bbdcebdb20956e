/**
 * How this repository's packages load their native addons (the library's `macvtap.node` in `lib/binding.ts`, the
 * harness's `macvtap_bench.node` in `macvtap-bench`): node-gyp-build from the package root — a local
 * `build/Release/` when there is one (a checkout built by cmake-js), otherwise `prebuilds/<platform>-<arch>/`, which
 * is what an installed package has, since each tarball ships its prebuild and no `build/`.
 *
 * Override: when the environment variable `envVar` is set, it must be the absolute path of an addon file (`*.node`)
 * and exactly that file is loaded instead — no search, no fallback. The sanitizer run (`npm run test:asan`) uses it to
 * load the ASan builds; being an environment variable, it reaches the node children and worker threads the tests
 * start. A relative or missing path is an error, never a silent fall back to another build.
 * @internal
 */
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
// node:fs taken from the builtin itself, not through an ESM import: the ESM facade of node:fs enumerates its exports,
// and reading its lazy ReadStream/WriteStream getters loads all of streams (~6 ms of import('macvtap') here).
const { existsSync, readFileSync } = process.getBuiltinModule('node:fs');

/** The nearest directory above `moduleUrl` whose package.json names the package `name` (works from sources and dist/). */
export function packageRoot(moduleUrl: string, name: string): string {
  let dir = dirname(fileURLToPath(moduleUrl));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj) && (JSON.parse(readFileSync(pj, 'utf8')) as { name?: unknown }).name === name) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`${name}: cannot find the package root above ${fileURLToPath(moduleUrl)}`);
    dir = up;
  }
}

/** Loads the addon of package `name` (whose module is at `moduleUrl`), or exactly the file `process.env[envVar]` names. */
export function loadAddon(moduleUrl: string, name: string, envVar: string): unknown {
  const file = process.env[envVar];
  if (!file) return (require('node-gyp-build') as (dir: string) => unknown)(packageRoot(moduleUrl, name));
  if (!isAbsolute(file) || !file.endsWith('.node')) {
    throw new Error(`${name}: ${envVar} must be the absolute path of a .node file, got ${JSON.stringify(file)}`);
  }
  if (!existsSync(file)) throw new Error(`${name}: ${envVar} names ${file}, which does not exist`);
  return require(file);
}
