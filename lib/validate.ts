/**
 * Input validation, done in TypeScript before the kernel sees anything (better-sqlite3's habit): each check throws a
 * `TypeError`/`RangeError` naming the option. Limits are the kernel's (`IFNAMSIZ`, `ETH_MIN_MTU`, `MAX_TAP_QUEUES`, …).
 *
 * The rules themselves are non-throwing predicates ({@link isPlainObject}, {@link isInteger}, {@link parseDecimal},
 * {@link macKind}, {@link linkNameFault}, {@link isUuid}): the throwing option checks here use them, and so does the
 * vif layer, which collects every problem of a vif dict instead of throwing at the first.
 * @internal
 */
import { invalidType, invalidValue, outOfRange } from './errors.js';
import type { LinkRef, MacvtapMode, Netns } from './types.js';

/** `IFNAMSIZ - 1`. */
export const MAX_NAME_BYTES = 15;
/** `ETH_MIN_MTU`. */
export const MIN_MTU = 68;
/** `IP_MAX_MTU`-ish upper bound rtnetlink accepts for `IFLA_MTU` on these devices. */
export const MAX_MTU = 65535;
/** The tap driver's `MAX_TAP_QUEUES`: queues one macvtap/tap device can have open. */
export const MAX_TAP_QUEUES = 256;
/** `IFALIASZ - 1`. */
export const MAX_ALIAS_BYTES = 255;
/** The largest u32 (`IFLA_GROUP`, `IFLA_TXQLEN`, libvirt's `unsignedInt`). */
export const U32_MAX = 0xffff_ffff;
const S32_MAX = 0x7fff_ffff;

/** The macvlan modes and their `IFLA_MACVLAN_MODE` values. */
export const MODE_VALUES: Record<MacvtapMode, number> = { private: 1, vepa: 2, bridge: 4, passthru: 8, source: 16 };

// ---------------------------------------------------------------------------------------------------------------
// Predicates: the rules, without an error

/** A non-null, non-array object. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An integer number in `[min, max]`. */
export function isInteger(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

/** A decimal integer written with digits only (`'007'` → 7), as command lines, Neutron and XML attributes carry them. */
export function parseDecimal(s: string): number | undefined {
  return /^[0-9]+$/.test(s) ? Number(s) : undefined;
}

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/**
 * What kind of Ethernet address `v` is: six hex octets `aa:bb:cc:dd:ee:ff` (either case) are `'multicast'` when the
 * low bit of the first octet is set (broadcast included), `'zero'` when all zero, `'unicast'` otherwise; anything else
 * is `undefined`. A link's own address must be `'unicast'` (the kernel's `is_valid_ether_addr`, libvirt's
 * `uniMacAddr`); a frame's destination may be any of the three.
 */
export function macKind(v: unknown): 'unicast' | 'multicast' | 'zero' | undefined {
  if (typeof v !== 'string' || !MAC_RE.test(v)) return undefined;
  if (parseInt(v.slice(0, 2), 16) & 1) return 'multicast';
  return v === '00:00:00:00:00:00' ? 'zero' : 'unicast';
}

/** What is wrong with a link name; see {@link linkNameFault}. */
export type LinkNameFault = 'empty' | 'dot' | 'char' | 'template' | 'percent' | 'length';

/**
 * Why the kernel would refuse `v` as a link name (`dev_valid_name`), or `undefined` when it accepts it: `'empty'`;
 * `'dot'` (`.` or `..`); `'char'` (`/`, `:`, NUL or whitespace); `'length'` (over {@link MAX_NAME_BYTES} bytes). With
 * `template`, one `%d` is allowed (`dev_alloc_name`) and counts as 4 bytes (`'template'`: another `%`); without, any
 * `%` is a `'percent'` fault.
 */
export function linkNameFault(v: string, template = false): LinkNameFault | undefined {
  if (v.length === 0) return 'empty';
  if (v === '.' || v === '..') return 'dot';
  if (/[/:\s\0]/.test(v)) return 'char';
  const bytes = Buffer.byteLength(v);
  let longest = bytes;
  if (v.includes('%')) {
    if (!template) return 'percent';
    const percents = v.split('%').length - 1;
    const templates = v.split('%d').length - 1;
    if (percents !== templates || templates > 1) return 'template';
    // The longest name the template can produce must still fit: reserve room for the number (up to 4 digits here).
    longest = bytes - 2 + 4;
  }
  return longest > MAX_NAME_BYTES ? 'length' : undefined;
}

const UUID_RE = /^([0-9a-fA-F]{32}|[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})$/;

/** A UUID as libvirt's `UUID` type takes it: 32 hex digits, bare or in the 8-4-4-4-12 form, either case. */
export function isUuid(v: unknown): v is string {
  return typeof v === 'string' && UUID_RE.test(v);
}

// ---------------------------------------------------------------------------------------------------------------
// Option checks: throw Node-style errors naming the option

/** Requires an options object (or `undefined`, which becomes `{}`). */
export function options<T extends object>(name: string, v: T | undefined): T {
  if (v === undefined) return {} as T;
  if (!isPlainObject(v)) throw invalidType(name, 'an object', v);
  return v;
}

/**
 * A link name the kernel accepts (`dev_valid_name`): 1–15 bytes, not `.`/`..`, no `/`, `:` or whitespace.
 * With `template`, exactly one `%d` is allowed (the kernel's `dev_alloc_name` rule); without, none.
 */
export function linkName(option: string, v: unknown, template = false): string {
  if (typeof v !== 'string') throw invalidType(option, 'a string', v);
  switch (linkNameFault(v, template)) {
    case undefined: return v;
    case 'empty': throw invalidValue(option, 'must not be empty', v);
    case 'dot': throw invalidValue(option, 'must not be "." or ".."', v);
    case 'char': throw invalidValue(option, 'must not contain "/", ":", NUL or whitespace', v);
    case 'template': throw invalidValue(option, 'may hold one "%d" and no other "%"', v);
    case 'percent': throw invalidValue(option, 'must not contain "%" (templates are only for new links)', v);
    case 'length': throw outOfRange(option, `at most ${MAX_NAME_BYTES} bytes long${template ? ' (a "%d" counts as 4)' : ''}`, v);
  }
}

/** A link by name or ifindex. */
export function linkRef(option: string, v: unknown): { index?: number; name?: string } {
  if (typeof v === 'number') return { index: ifindex(option, v) };
  if (typeof v === 'string') return { name: linkName(option, v) };
  throw invalidType(option, 'a link name (string) or ifindex (number)', v);
}

/** Human text for a {@link LinkRef}, for messages. */
export function refText(v: LinkRef): string {
  return typeof v === 'number' ? `ifindex ${v}` : v;
}

/** An integer in `[min, max]`. */
export function integer(option: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number') throw invalidType(option, 'a number', v);
  if (!isInteger(v, min, max)) throw outOfRange(option, `an integer >= ${min} and <= ${max}`, v);
  return v;
}

/** An ifindex: 1–2^31-1 (`ifi_index` is a signed int). */
export function ifindex(option: string, v: unknown): number {
  return integer(option, v, 1, S32_MAX);
}

/** A 32-bit unsigned attribute value (`IFLA_TXQLEN`, `IFLA_GROUP`, …). */
export function u32(option: string, v: unknown): number {
  return integer(option, v, 0, U32_MAX);
}

/**
 * A link group: a u32 outside `0x6d400000`–`0x6d7fffff`, which the package reserves to mark links under
 * construction (see lib/owner.ts): a user group there could make gc mistake an untagged link for a half-made one.
 */
export function group(option: string, v: unknown): number {
  const g = u32(option, v);
  if (g >= 0x6d40_0000 && g <= 0x6d7f_ffff) {
    throw outOfRange(option, 'an integer >= 0 and <= 4294967295 outside 1832910848–1837105151 (0x6d400000–0x6d7fffff, reserved by macvtap for links under construction)', v);
  }
  return g;
}

/** An MTU in `ETH_MIN_MTU`–65535. */
export function mtu(option: string, v: unknown): number {
  return integer(option, v, MIN_MTU, MAX_MTU);
}

/** A boolean (no truthiness: `1` or `'yes'` are refused). */
export function bool(option: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw invalidType(option, 'a boolean', v);
  return v;
}

/** A link's own Ethernet address: unicast, not all-zero (see {@link macKind}); returned lower-case. */
export function mac(option: string, v: unknown): string {
  if (typeof v !== 'string') throw invalidType(option, 'a MAC address string', v);
  switch (macKind(v)) {
    case 'unicast': return v.toLowerCase();
    case undefined: throw invalidValue(option, 'must be six hex octets like "02:00:00:00:00:01"', v);
    case 'multicast': throw invalidValue(option, 'must be a unicast address (the first octet is odd, which is multicast)', v);
    case 'zero': throw invalidValue(option, 'must not be all zero', v);
  }
}

/** One of the macvlan/macvtap modes, by iproute2's name. */
export function mode(option: string, v: unknown): MacvtapMode {
  if (typeof v !== 'string' || !Object.hasOwn(MODE_VALUES, v)) {
    throw invalidValue(option, `must be one of ${Object.keys(MODE_VALUES).map((m) => `'${m}'`).join(', ')}`, v);
  }
  return v as MacvtapMode;
}

/** An alias the kernel keeps (`IFALIASZ`). */
export function alias(option: string, v: unknown): string {
  if (typeof v !== 'string') throw invalidType(option, 'a string', v);
  if (Buffer.byteLength(v) > MAX_ALIAS_BYTES) throw outOfRange(option, `at most ${MAX_ALIAS_BYTES} bytes long`, v);
  if (v.includes('\0')) throw invalidValue(option, 'must not contain NUL', v);
  return v;
}

/** A namespace: a non-empty absolute path or a non-negative integer fd. */
export function netns(option: string, v: unknown): Netns {
  if (typeof v === 'number') return integer(option, v, 0, S32_MAX);
  if (typeof v === 'string') {
    if (!v.startsWith('/') || v.includes('\0')) throw invalidValue(option, 'must be an absolute path like "/run/netns/NAME" or an fd', v);
    return v;
  }
  throw invalidType(option, 'a namespace path (string) or fd (number)', v);
}

/**
 * An options argument that may hold only `netns` (`{ netns? }` of getLink, deleteLink, …): refused when it is not an
 * object or has any other key; its namespace as the addon takes it.
 */
export function netnsOnly(value: { netns?: unknown } | undefined): Netns | null {
  const opts = options('options', value);
  knownKeys('options', opts, ['netns']);
  return nsOf(opts);
}

/** The `netns` option of an options object, as the addon takes it. */
export function nsOf(opts: { netns?: unknown }): Netns | null {
  return opts.netns === undefined ? null : netns('netns', opts.netns);
}

/** The `signal` option of an options object: absent, or an `AbortSignal`. */
export function signal(opts: { signal?: unknown }): AbortSignal | undefined {
  if (opts.signal === undefined) return undefined;
  if (!(opts.signal instanceof AbortSignal)) throw invalidType('signal', 'an AbortSignal', opts.signal);
  return opts.signal;
}

/** Rejects keys the options type does not have (a typo must not be silently ignored). */
export function knownKeys(option: string, obj: object, keys: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (!keys.includes(k)) throw invalidValue(`${option}.${k}`, `is not a known option (known: ${keys.join(', ')})`, (obj as Record<string, unknown>)[k]);
  }
}
