/**
 * Loads the native addon with node-gyp-build: a local `build/Release/` when there is one (a developer's checkout, built
 * by cmake-js), otherwise `prebuilds/<platform>-<arch>/` — which is what an installed package has, since the tarball
 * ships prebuilds and no `build/`.
 *
 * Override: when the environment variable `MACVTAP_ADDON` is set, it must be the absolute path of an addon file
 * (`*.node`) and exactly that file is loaded instead — no search, no fallback. The sanitizer run (`npm run test:asan`)
 * uses it to load `build-asan/Release/macvtap.node`; being an environment variable, it reaches the node children and
 * worker threads the tests start. A relative or missing path is an error, never a silent fall back to another build.
 *
 * The only module that touches the addon's loader; everything else imports {@link binding} typed by `binding.d.ts`.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Binding } from '../binding.js';
import { linkFromNative } from './linkinfo.js';

/** The package root: the nearest directory above this file holding `CMakeLists.txt` (works from `lib/` and `dist/lib/`). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'CMakeLists.txt')) && existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('macvtap: cannot find the package root (CMakeLists.txt) above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

const require = createRequire(import.meta.url);
const load = require('node-gyp-build') as (dir: string) => unknown;

/** The addon file named by `MACVTAP_ADDON`, checked; `undefined` when the variable is unset or empty. */
function addonOverride(): string | undefined {
  const file = process.env.MACVTAP_ADDON;
  if (!file) return undefined;
  if (!isAbsolute(file) || !file.endsWith('.node')) {
    throw new Error(`macvtap: MACVTAP_ADDON must be the absolute path of a .node file, got ${JSON.stringify(file)}`);
  }
  if (!existsSync(file)) throw new Error(`macvtap: MACVTAP_ADDON names ${file}, which does not exist`);
  return file;
}

function loadBinding(): Binding {
  const file = addonOverride();
  const b = (file === undefined ? load(packageRoot()) : require(file)) as Binding;
  // Once per environment (each worker thread loads the addon anew): how a decoded link becomes a LinkInfo.
  b.setLinkFactory(linkFromNative);
  return b;
}

/** The native addon, typed by hand in `binding.d.ts`. */
export const binding: Binding = loadBinding();
