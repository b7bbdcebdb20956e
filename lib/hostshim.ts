/**
 * Host access to macvtap guests. A macvtap's lower device never hands the host's own traffic to the macvtaps on it
 * (macvlan delivers frames between its own devices, and between them and the wire, but the lower device's stack is
 * outside that switch), so the host cannot reach its guests over the lower device. A macvlan in bridge mode on the
 * same lower, carrying the host's address, is inside the switch: the host talks to its guests through it.
 */
import type { NativeCreateLink } from '../binding.js';
import { binding } from './binding.js';
import { parseCidr } from './address.js';
import { callNative, invalidValue } from './errors.js';
import { createLink, finishOrDelete } from './link.js';
import { createOwnership } from './owner.js';
import type { CreateHostShimOptions, LinkInfo } from './types.js';
import * as v from './validate.js';

const SHIM_KEYS = ['lower', 'name', 'addresses', 'mac', 'netns', 'owner', 'signal'] as const;

/**
 * Creates the host's way to its macvtap guests: a macvlan in bridge mode on the guests' lower device, up, with the
 * given addresses, and the package's owner tag like every link it creates (so {@link gc} removes it once its creating
 * process is gone). Give it an address in the guests' subnet (the host's address moves from the lower device to the
 * shim, or the shim gets a second one); routes through it are the caller's.
 *
 * A wireless lower is refused as for {@link createMacvtap}. Any failure after the create (an address the kernel
 * refuses) deletes the shim before the error is thrown.
 *
 * Equivalent to: `ip link add link LOWER name NAME type macvlan mode bridge && ip addr add ADDR dev NAME && ip link
 * set NAME up` (libvirt's and Proxmox's documented work-around for "the host cannot reach its macvtap guests").
 *
 * @example
 * ```ts
 * const shim = await createHostShim({ lower: 'eth1', name: 'mvshim0', addresses: ['192.168.1.250/24'] });
 * // … the host now reaches the guests on eth1's macvtaps; later:
 * await deleteLink(shim.ifindex);
 * ```
 * @throws TypeError/RangeError for bad options (before anything is created).
 * @throws {@link MacvtapError} as {@link createMacvtap} (`ENODEV`, `EEXIST`, `EOPNOTSUPP` for a wireless lower), and
 *   `EEXIST`/`EADDRNOTAVAIL` from an address.
 */
export async function createHostShim(options: CreateHostShimOptions): Promise<LinkInfo> {
  const opts = v.options('options', options);
  v.knownKeys('options', opts, SHIM_KEYS);
  if (opts.lower === undefined) throw invalidValue('lower', 'is required (the guests\' lower device, by name or ifindex)', undefined);
  const lowerKey = v.linkRef('lower', opts.lower);
  const name = v.linkName('name', opts.name === undefined ? 'mvshim%d' : opts.name, true);
  if (!Array.isArray(opts.addresses) || opts.addresses.length === 0) {
    throw invalidValue('addresses', "must be a non-empty array of 'ADDRESS/LEN' strings", opts.addresses);
  }
  const addresses = opts.addresses.map((a, i) => parseCidr(`addresses[${i}]`, a));
  const req: NativeCreateLink = {
    kind: 'macvlan',
    name,
    macvlanMode: v.MODE_VALUES.bridge,
    up: true,
    link: lowerKey.index ?? (lowerKey.name as string),
    ...(opts.mac !== undefined && { address: v.mac('mac', opts.mac) }),
    ...createOwnership(opts, undefined, undefined),
  };
  const ns = v.nsOf(opts);
  const info = await createLink(req, ns, v.signal(opts));
  return finishOrDelete(info, ns, async () => {
    for (const a of addresses) await callNative(() => binding.addrAdd({ index: info.ifindex }, a, ns));
  });
}
