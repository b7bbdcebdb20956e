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
export { connectQmp, QmpClient, QmpError, QmpProtocolError, QMP_MIN_QEMU } from './qemu/qmp.js';
export { qemuNetdevArgs, MAX_QEMU_QUEUES } from './qemu/netdev.js';
export type { QemuNetdevOptions, QemuNetdevArgs } from './qemu/netdev.js';
export { attachMacvtap, detachMacvtap } from './qemu/hotplug.js';
export type { AttachMacvtapOptions, MacvtapAttachment, DetachMacvtapOptions } from './qemu/hotplug.js';
export type { QmpGreeting, QmpEvent, QmpConnectOptions, QmpExecuteOptions, QmpWaitEventOptions } from './qemu/qmp.js';
export { followRxFilter, RxFilterFollower } from './qemu/rxfilter.js';
export type { FollowRxFilterOptions, RxFilterState, RxFilterStopReason } from './qemu/rxfilter.js';
export { netnsPath } from './netns.js';
export { gc } from './gc.js';
export { createTapNode, removeTapNode } from './tapnode.js';
export { createHostShim } from './hostshim.js';
export { watchLinks, linkEvents, LinkWatcher, LinkEventEmitter } from './events.js';
export { MacvtapError } from './errors.js';
export type * from './types.js';
export { applyPortSecurity, removePortSecurity, getPortSecurity } from './portsec/index.js';
export type * from './portsec/types.js';
