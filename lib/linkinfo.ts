/**
 * The one place a link becomes a {@link LinkInfo}: the addon decodes an `RTM_NEWLINK` and calls {@link linkFromNative}
 * with its fields (registered by `lib/binding.ts` with `setLinkFactory` when the addon loads). A single call with
 * plain values, so V8 builds the object from this literal, is cheaper than building it property by property through
 * N-API, and it is a visible part of a cheap `getLinkSync`. The parameters' order is the addon's table
 * (`MACVTAP_LINK_FACTORY_ARGS` in native/link.cc); test/linkinfo.test.ts holds the names here to it.
 * @internal
 */
import type { NativeLinkFactory } from '../binding.js';
import type { LinkInfo, MacvtapMode, OperState } from './types.js';
import { MODE_VALUES } from './validate.js';

const IFF_UP = 0x1;
const IFF_PROMISC = 0x100;
const IFF_LOWER_UP = 0x10000;
/** `MACVLAN_FLAG_NOPROMISC` (<linux/if_link.h>). @internal */
export const MACVLAN_FLAG_NOPROMISC = 1;
const MACVLAN_FLAG_NODST = 2;
/** `ETH_P_8021AD` (<linux/if_ether.h>). @internal */
export const ETH_P_8021AD = 0x88a8;
const BRPORT_HAIRPIN = 1;
const BRPORT_LEARNING = 2;
const BRPORT_FLOOD = 4;
const OPERSTATES: OperState[] = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'];
const MODE_NAMES = new Map(Object.entries(MODE_VALUES).map(([k, n]) => [n, k as MacvtapMode]));

/** Decodes the addon's fields of one link (see {@link NativeLinkFactory}) into the public {@link LinkInfo}. @internal */
export const linkFromNative: NativeLinkFactory = (
  ifindex, name, kind, address, broadcast, mtu, minMtu, maxMtu, txqlen, flags, operstate, link, linkNetnsid,
  linkName, master, group, alias, numTxQueues, numRxQueues, macvlanMode, macvlanFlags, sourceMacs, vlanId,
  vlanProtocol, bridgePort, tapMajor, tapMinor,
): LinkInfo => ({
  name,
  ifindex,
  kind,
  mac: address,
  broadcast,
  mtu,
  minMtu,
  maxMtu,
  txqlen,
  up: (flags & IFF_UP) !== 0,
  carrier: (flags & IFF_LOWER_UP) !== 0,
  promisc: (flags & IFF_PROMISC) !== 0,
  operstate: OPERSTATES[operstate] ?? 'unknown',
  flags,
  lower: link === null ? null : { ifindex: link, name: linkName, netnsid: linkNetnsid },
  master,
  group,
  alias,
  numTxQueues,
  numRxQueues,
  macvlan: macvlanMode === null ? null : {
    mode: MODE_NAMES.get(macvlanMode) ?? 'bridge',
    nopromisc: (macvlanFlags & MACVLAN_FLAG_NOPROMISC) !== 0,
    nodst: (macvlanFlags & MACVLAN_FLAG_NODST) !== 0,
    sourceMacs: sourceMacs ?? [],
  },
  vlan: vlanId === null ? null : { id: vlanId, protocol: vlanProtocol === ETH_P_8021AD ? '802.1ad' : '802.1Q' },
  tap: tapMajor === null ? null : { major: tapMajor, minor: tapMinor, path: `/dev/tap${ifindex}` },
  bridgePort: bridgePort === null ? null : {
    hairpin: (bridgePort & BRPORT_HAIRPIN) !== 0,
    learning: (bridgePort & BRPORT_LEARNING) !== 0,
    flood: (bridgePort & BRPORT_FLOOD) !== 0,
  },
});

/**
 * A copy of `info` that shares nothing with it (for the link watcher, which keeps each link's last state and hands
 * out events its caller may change), with the lower device's name set to `lowerName` when one is given.
 * @internal
 */
export function copyLinkInfo(info: LinkInfo, lowerName?: string | null): LinkInfo {
  return {
    ...info,
    lower: info.lower && { ...info.lower, name: lowerName === undefined ? info.lower.name : lowerName },
    macvlan: info.macvlan && { ...info.macvlan, sourceMacs: [...info.macvlan.sourceMacs] },
    vlan: info.vlan && { ...info.vlan },
    tap: info.tap && { ...info.tap },
    bridgePort: info.bridgePort && { ...info.bridgePort },
  };
}
