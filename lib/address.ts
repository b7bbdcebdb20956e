/** Interface addresses (`RTM_NEWADDR`): enough to give a testbed's endpoints their IPs without `ip addr`. */
import { createRequire } from 'node:module';
import { binding } from './binding.js';
import { callNative, invalidType, invalidValue } from './errors.js';
import type { LinkRef, NetnsOption } from './types.js';
import * as v from './validate.js';

// node:net is loaded on the first call, not with the package: it pulls in streams, dns and more, which alone cost
// more than the whole rest of `import('macvtap')` (bench/tools/footprint.mjs measures the import), for one isIP().
const require = createRequire(import.meta.url);
let isIP: ((input: string) => number) | undefined;

/**
 * Adds an address with its prefix length to a link: `'10.0.0.1/24'` or `'fd00::1/64'` (IPv4 also gets the subnet's
 * broadcast address, as `brd +` gives it). IPv6 addresses go through duplicate address detection as usual (tentative
 * for a moment after this resolves).
 *
 * Equivalent to: `ip addr add ADDRESS/LEN [brd +] dev LINK`.
 *
 * @example
 * ```ts
 * await addAddress('veth1', '10.200.1.2/24', { netns: '/run/netns/peer' });
 * ```
 * @throws TypeError/RangeError for a malformed address or prefix, before anything is sent.
 * @throws {@link MacvtapError} `EEXIST` (already there), `ENODEV` (no such link), `EPERM`.
 */
export async function addAddress(link: LinkRef, address: string, options?: NetnsOption): Promise<void> {
  const key = v.linkRef('link', link);
  const a = parseCidr('address', address);
  const ns = v.netnsOnly(options);
  await callNative(() => binding.addrAdd(key, a, ns));
}

/** Validates `ADDRESS/LEN` (IPv4 or IPv6) as {@link addAddress} takes it. @internal */
export function parseCidr(option: string, address: unknown): { family: 4 | 6; address: string; prefixlen: number } {
  if (typeof address !== 'string') throw invalidType(option, "a string like '10.0.0.1/24' or 'fd00::1/64'", address);
  const slash = address.lastIndexOf('/');
  if (slash < 0) throw invalidValue(option, "must carry a prefix length ('10.0.0.1/24')", address);
  const ip = address.slice(0, slash);
  isIP ??= (require('node:net') as typeof import('node:net')).isIP;
  const family = isIP(ip);
  if (family !== 4 && family !== 6) throw invalidValue(option, 'must be an IPv4 or IPv6 address with /LEN', address);
  const lenText = address.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) throw invalidValue(option, 'must end in /LEN with a decimal prefix length', address);
  const prefixlen = v.integer(`${option} prefix length`, Number(lenText), 0, family === 4 ? 32 : 128);
  return { family, address: ip, prefixlen };
}
