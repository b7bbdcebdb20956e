/**
 * `macvtap/internal`: what the packages built in this repository on top of the library (the `macvtap-bench`
 * harness) share with it, so that it is written once: the addon loader, the addon error conversion and the input
 * validators with Node's error codes. Not part of the library's API contract: it may change in any release.
 *
 * @packageDocumentation
 * @internal
 */
export { callNative, callNativeSync, fromNative, invalidType, invalidValue, outOfRange } from './errors.js';
export * as validate from './validate.js';
export { loadAddon } from './loader.js';
export type { NativeErrorFields, NativeNetns } from '../binding.js';
