/**
 * `macvtap/internal`: what the packages built in this repository on top of the library (the `macvtap-bench`
 * harness) and its CLI share with it, so that each is written once: the addon loader, the addon error conversion, the
 * input validators with Node's error codes, `/proc/PID/stat` read as proc(5) numbers its fields, and the reading of
 * whole numbers typed on a command line. Not part of the library's API contract: it may change in any release.
 *
 * @packageDocumentation
 * @internal
 */
export { callNative, callNativeSync, fromNative, invalidType, invalidValue, outOfRange } from './errors.js';
export { procStat } from './owner.js';
export * as validate from './validate.js';
export { loadAddon, packageRoot } from './loader.js';
export type { NativeErrorFields, NativeNetns } from '../binding.js';
import { parseDecimal } from './validate.js';

/**
 * A whole number typed on a command line, within `[min, max]`; `null` for anything else. Digits only, by the same rule
 * as the library's CLI ({@link validate.parseDecimal}): `Number()` would also take `''` (as 0), `' 7'`, `'1e3'`,
 * `'0x10'` and `'2.0'`, none of which anybody means as a count. The caller words its own usage error from the `null`.
 * @internal
 */
export function parseIntegerArg(text: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | null {
  const n = parseDecimal(text);
  return n !== undefined && Number.isSafeInteger(n) && n >= min && n <= max ? n : null;
}
