/**
 * `macvtap`: macvtap links over raw rtnetlink, their `/dev/tapN` queues, and fd handoff to QEMU.
 *
 * @packageDocumentation
 */
export { createMacvtap, createVlan, createVeth, getLink, getLinkSync, listLinks, setLink, deleteLink, deleteGroup } from './link.js';
export { openTap, TapQueue } from './tap.js';
export { createBridge, setBridgePort } from './bridge.js';
export { addAddress } from './address.js';
export { addRoute } from './route.js';
export { createTap } from './tun.js';
export { setOffloads } from './ethtool.js';
export { setBandwidth, getBandwidth } from './bandwidth.js';
export type { Bandwidth, BandwidthRate, GetBandwidthOptions } from './bandwidth.js';
export { setLinkIpv6 } from './sysctl.js';
export { sendFds, recvFds } from './fdpass.js';
export { netnsPath } from './netns.js';
export { gc } from './gc.js';
export { watchLinks, linkEvents, LinkWatcher, LinkEventEmitter } from './events.js';
export { MacvtapError } from './errors.js';
export type * from './types.js';
export { applyPortSecurity, removePortSecurity, getPortSecurity } from './portsec/index.js';
export type * from './portsec/types.js';
