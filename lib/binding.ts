/**
 * Loads the native addon with node-gyp-build: a local `build/Release/` when there is one (a developer's checkout, built
 * by cmake-js), otherwise `prebuilds/<platform>-<arch>/` — which is what an installed package has, since the tarball
 * ships prebuilds and no `build/`.
 * The only module that touches the addon's loader; everything else imports {@link binding} typed by `binding.d.ts`.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Binding } from '../binding.js';

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

/** The native addon, typed by hand in `binding.d.ts`. */
export const binding: Binding = load(packageRoot()) as Binding;
