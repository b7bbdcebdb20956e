/**
 * Loads the library's native addon (see `loader.ts`: node-gyp-build from the package root, or exactly the file named
 * by `MACVTAP_ADDON`) and registers, once per environment (each worker thread loads the addon anew), how a decoded
 * link becomes a `LinkInfo`.
 *
 * The only module that touches the addon's loader; everything else imports {@link binding} typed by `binding.d.ts`.
 */
import type { Binding } from '../binding.js';
import { linkFromNative } from './linkinfo.js';
import { loadAddon } from './loader.js';

function loadBinding(): Binding {
  const b = loadAddon(import.meta.url, 'macvtap', 'MACVTAP_ADDON') as Binding;
  b.setLinkFactory(linkFromNative);
  return b;
}

/** The native addon, typed by hand in `binding.d.ts`. */
export const binding: Binding = loadBinding();
