/**
 * The typed surface of the native addon (`native/`, registered in `native/addon.cc`).
 *
 * This file is the contract between C++ and TypeScript. The addon does syscalls, wire encoding and fd lifetimes; it
 * does no defaulting and little validation: `lib/` validates every input before calling in here. Nothing outside
 * `lib/binding.ts` loads the addon, and it is never cast to `any`.
 *
 * Errors: every function throws (sync) or rejects (async) with a plain `Error` carrying {@link NativeErrorFields}.
 * `lib/errors.ts` turns them into `MacvtapError`.
 *
 * Links: every function that returns a link returns what the registered {@link NativeLinkFactory} made of it.
 *
 * Handles: every native resource this surface hands out is a number, the fd it is built on, owned by the addon in a
 * registry per environment (main thread, each worker thread): a tap queue's or tun device's fd, a received fd, and a
 * link watcher (its netlink socket, with the libuv poll handle that watches it). `fdClose`/`fdCloseAsync` end a
 * handle of any kind, `fdRelease` hands a plain fd away (a watcher cannot be), `ownedFds` lists them, and whatever is
 * still owned when the environment exits is closed then. A number the addon does not own is refused with `EBADF`,
 * never closed. The model is described once, in `native/ownership.h`. (The benchmark's `endpointStart` threads have
 * ids of their own, outside this model.)
 *
 * Namespaces: `ns` is `null` (the calling thread's current network namespace), a path such as `/run/netns/NAME` or
 * `/proc/PID/ns/net`, or an open fd of a network namespace. Async work enters it with `setns(CLONE_NEWNET)` on the
 * worker thread only and leaves it before the thread is reused; the rest of the process never changes namespace.
 */

import type { LinkInfo } from './lib/types.js';

/** Fields on every error the addon throws or rejects with. */
export interface NativeErrorFields {
  /** errno name, e.g. `'EEXIST'`. */
  code: string;
  /** Negative errno, as Node's `SystemError` has it. */
  errno: number;
  /** `'RTM_NEWLINK'`, `'RTM_GETLINK'`, `'RTM_SETLINK'`, `'RTM_DELLINK'`, `'ioctl(TUNSETIFF)'`, `'open'`, `'setns'`, … */
  syscall: string;
  /** File path involved (`/dev/tap12`, `/run/netns/x`), when there is one. */
  path?: string;
  /** Link name or index the operation was about, when there is one. */
  device?: string;
  /** The kernel's extended-ack message (`NLMSGERR_ATTR_MSG`), when it sent one. */
  extack?: string;
}

/** A network namespace: `null` for the current one, a path, or an open fd. */
export type NativeNetns = string | number | null;

/** Selects one link: by ifindex, or by name (`IFLA_IFNAME`). */
export interface NativeLinkKey {
  index?: number;
  name?: string;
}

/**
 * What the addon hands every decoded `RTM_NEWLINK` (a create's echo, a get, each link of a list, a watcher's
 * notification) to: one call with the fields in this order, and what it returns is what the link functions resolve
 * with. `lib/binding.ts` registers `linkFromNative` (`lib/linkinfo.ts`) right after loading the addon, so the
 * functions below are typed as returning {@link LinkInfo}. Building the object in JavaScript from a literal is
 * cheaper than setting its properties one by one through N-API, each a call across the boundary.
 *
 * The order is the one table `MACVTAP_LINK_FACTORY_ARGS` in `native/link.cc`; {@link Binding.setLinkFactory} returns
 * its names, and `test/linkinfo.test.ts` checks that they are the parameter names here and in `linkFromNative`, in the
 * same order (the types alone would not catch two swapped numbers).
 */
export type NativeLinkFactory = (
  ifindex: number,
  /** `IFLA_IFNAME`. */
  name: string,
  /** `IFLA_INFO_KIND` (`'macvtap'`, `'macvlan'`, `'veth'`, `'vlan'`, `'bridge'`, …), `null` for e.g. `lo`. */
  kind: string | null,
  /** `IFLA_ADDRESS`, lower-case colon hex; `null` when the link has none. */
  address: string | null,
  /** `IFLA_BROADCAST`. */
  broadcast: string | null,
  mtu: number,
  minMtu: number | null,
  maxMtu: number | null,
  /** `IFLA_TXQLEN`. */
  txqlen: number,
  /** `ifi_flags` (`IFF_UP` 0x1, `IFF_PROMISC` 0x100, `IFF_RUNNING` 0x40, `IFF_LOWER_UP` 0x10000, …). */
  flags: number,
  /** `IFLA_OPERSTATE` (`IF_OPER_UNKNOWN` 0 … `UP` 6). */
  operstate: number,
  /** `IFLA_LINK`: the lower device's ifindex (in `linkNetnsid`'s namespace when that is set). */
  link: number | null,
  /** `IFLA_LINK_NETNSID`: set when the lower device lives in another namespace. */
  linkNetnsid: number | null,
  /** The lower's name: resolved by get and create (a second `RTM_GETLINK`) and list (from the dump); `null` in events. */
  linkName: string | null,
  /** `IFLA_MASTER`. */
  master: number | null,
  /** `IFLA_GROUP`. */
  group: number,
  /** `IFLA_IFALIAS`. */
  alias: string | null,
  numTxQueues: number | null,
  numRxQueues: number | null,
  /** macvlan/macvtap: `IFLA_MACVLAN_MODE` (PRIVATE 1, VEPA 2, BRIDGE 4, PASSTHRU 8, SOURCE 16); `null` for other kinds. */
  macvlanMode: number | null,
  /** `IFLA_MACVLAN_FLAGS` (NOPROMISC 1, NODST 2); 0 for other kinds. */
  macvlanFlags: number,
  /** `IFLA_MACVLAN_MACADDR_DATA` (source mode), lower-case `aa:bb:cc:dd:ee:ff`; `null` when there are none. */
  sourceMacs: string[] | null,
  /** vlan: `IFLA_VLAN_ID`; `null` for other kinds. */
  vlanId: number | null,
  /** vlan: `IFLA_VLAN_PROTOCOL`, host byte order (0x8100 / 0x88a8); 0 for other kinds. */
  vlanProtocol: number,
  /**
   * A bridge port's `IFLA_INFO_SLAVE_DATA` as bits: 1 `IFLA_BRPORT_MODE` (hairpin), 2 `_LEARNING`, 4
   * `_UNICAST_FLOOD`; `null` when the link is no bridge port.
   */
  bridgePort: number | null,
  /**
   * macvtap only: the tap char device's major, read from `/sys/class/net/NAME/macvtap/tapIFINDEX/dev` through a
   * sysfs mounted for the link's own namespace, so it is right even when another namespace has a macvtap with the
   * same ifindex; `null` for other kinds or when sysfs could not be read.
   */
  tapMajor: number | null,
  /** The tap char device's minor (0 when `tapMajor` is `null`). */
  tapMinor: number,
) => LinkInfo;

/** A bridge port's switches (`IFLA_BRPORT_*`). In requests, an absent field is left unchanged. */
export interface NativeBridgePort {
  hairpin: boolean;
  learning: boolean;
  flood: boolean;
}

/** One interface address for `RTM_NEWADDR`. */
export interface NativeAddress {
  family: 4 | 6;
  /** Dotted quad or IPv6 text (`inet_pton`). */
  address: string;
  prefixlen: number;
}

/** A token bucket as the kernel keeps it: bytes/s and bytes. */
export interface NativeTcBucket {
  rate: number;
  burst: number;
}

/** One qdisc, class or filter of a `tcDump`, as parsed from `RTM_NEWQDISC`/`RTM_NEWTCLASS`/`RTM_NEWTFILTER`. */
export interface NativeTcObject {
  /** `TCA_KIND`: `'htb'`, `'ingress'`, `'fq_codel'`, `'matchall'`, … */
  kind: string;
  /** `tcm_handle` (major in the upper 16 bits). */
  handle: number;
  /** `tcm_parent` (`0xffffffff` root, `0xfffffff1` ingress). */
  parent: number;
  /** Filters: priority and protocol (network byte order) from `tcm_info`. */
  prio?: number;
  protocol?: number;
  /** htb qdisc: `tc_htb_glob.defcls`. */
  defcls?: number;
  /** htb class: rate and ceil, buckets converted from psched ticks to bytes. */
  rate?: NativeTcBucket;
  ceil?: NativeTcBucket;
  /** A filter's first police action (matchall, or u32 as libvirt installs it); `exceed` is `tc_police.action`. */
  police?: NativeTcBucket & { peak: number; mtu: number; exceed: number };
}

/** What `tcDump` found on one device. */
export interface NativeTcDump {
  ifindex: number;
  qdiscs: NativeTcObject[];
  classes: NativeTcObject[];
  /** Filters of the ingress (or clsact) qdisc; empty when there is none. */
  filters: NativeTcObject[];
}

/** One step of `tcApply`; rates in bytes/s, bursts in bytes (the addon converts them to psched ticks). */
export type NativeTcOp =
  | { op: 'htbQdisc'; handle: number; defcls: number; replace: boolean }
  | { op: 'ingressQdisc' }
  | { op: 'deleteQdisc'; parent: number; handle: number }
  | { op: 'htbClass'; parent: number; classid: number; create: boolean; rate: number; burst: number; ceil: number; cburst: number }
  | { op: 'policeFilter'; parent: number; prio: number; handle: number; rate: number; burst: number; peak: number; mtu: number }
  | { op: 'deleteFilter'; parent: number; prio: number };

/** Legacy `SIOCETHTOOL` set commands; an absent field is left unchanged. */
export interface NativeOffloads {
  /** `ETHTOOL_STXCSUM`. */ tx?: boolean;
  /** `ETHTOOL_SRXCSUM`. */ rx?: boolean;
  /** `ETHTOOL_SSG`. */ sg?: boolean;
  /** `ETHTOOL_STSO`. */ tso?: boolean;
  /** `ETHTOOL_SGSO`. */ gso?: boolean;
  /** `ETHTOOL_SGRO`. */ gro?: boolean;
}

/** The result of {@link Binding.tunCreate}: the fd is owned by the addon until `fdClose`/`fdRelease`. */
export interface NativeTunResult {
  fd: number;
  /** The device's name (a `%d` template expanded by the kernel). */
  name: string;
  ifindex: number;
}

/** An `RTM_NEWLINK` create request (`NLM_F_CREATE | NLM_F_EXCL`). Already validated by `lib/`. */
export interface NativeCreateLink {
  /** `IFLA_INFO_KIND`: `'macvtap' | 'macvlan' | 'vlan' | 'veth' | 'bridge'`. */
  kind: 'macvtap' | 'macvlan' | 'vlan' | 'veth' | 'bridge';
  /**
   * `IFLA_IFNAME`. When it contains `%d` it is a template: the addon tries `n = 0, 1, 2, …` (starting from a
   * per-template hint it keeps in-process, so it does not dump links), retrying on `EEXIST` only, at most 4096 tries.
   */
  name: string;
  /**
   * `IFLA_LINK`: the lower device (required for macvtap, macvlan, vlan), by ifindex or by name — a name is resolved
   * with an `RTM_GETLINK` on the same socket inside the same operation (`ENODEV`, syscall `'RTM_GETLINK'`, if absent).
   */
  link?: number | string;
  /** `ifi_index`: create with this ifindex (`EEXIST` when taken: seen on 6.1 and 6.18). */
  ifindex?: number;
  /** `IFLA_ADDRESS`, `aa:bb:cc:dd:ee:ff`. */
  address?: string;
  mtu?: number;
  txqlen?: number;
  /** Sets `IFF_UP` in `ifi_flags`/`ifi_change` in the create message itself. */
  up?: boolean;
  group?: number;
  /** `IFLA_NUM_TX_QUEUES` and `IFLA_NUM_RX_QUEUES`, both this value (1–4096). */
  numQueues?: number;
  /**
   * `IFLA_IFALIAS`. The kernel ignores it in a create, so it is set by a change request right after the create, with
   * `finalGroup` as `IFLA_GROUP` in the same request when given.
   */
  alias?: string;
  /** With `alias`: the group to set together with it (the create's own `group` is then a construction marker). */
  finalGroup?: number;
  /** Sets `IFF_ALLMULTI` in `ifi_flags`/`ifi_change` of the create message itself. */
  allmulti?: boolean;
  /** macvlan/macvtap: `IFLA_MACVLAN_MODE`. */
  macvlanMode?: number;
  /** macvlan/macvtap: `IFLA_MACVLAN_FLAGS`. */
  macvlanFlags?: number;
  /** macvlan/macvtap in source mode: `IFLA_MACVLAN_MACADDR_MODE = MACVLAN_MACADDR_SET` + `IFLA_MACVLAN_MACADDR_DATA`. */
  macvlanMacaddrs?: string[];
  /** vlan: `IFLA_VLAN_ID`. */
  vlanId?: number;
  /** vlan: `IFLA_VLAN_PROTOCOL` (0x8100 default in the kernel, 0x88a8). */
  vlanProtocol?: number;
  /** veth: the peer (`VETH_INFO_PEER`), optionally created directly in another namespace (`IFLA_NET_NS_FD`). */
  peer?: { name: string; address?: string; netns?: NativeNetns };
}

/** An `RTM_NEWLINK` change request on an existing link (no `NLM_F_CREATE`). Already validated by `lib/`. */
export interface NativeSetLink {
  up?: boolean;
  /** `IFF_PROMISC` in `ifi_change`/`ifi_flags`: the user's promiscuity request, as `ip link set promisc on|off`. */
  promisc?: boolean;
  /** `IFF_ALLMULTI` the same way (`ip link set allmulticast on|off`). */
  allmulti?: boolean;
  mtu?: number;
  address?: string;
  /** `IFLA_IFNAME`: rename (while the link is up 6.1 refuses with `EBUSY`, 6.18 renames it). */
  name?: string;
  /** `IFLA_IFALIAS`; `''` removes the alias. */
  alias?: string;
  group?: number;
  txqlen?: number;
  /** `IFLA_NET_NS_FD`: move the link into this namespace. */
  netns?: NativeNetns;
  /**
   * `IFLA_MASTER`: enslave to this link (a bridge), by ifindex or by name (resolved in the same namespace and
   * operation); `0` releases it (`nomaster`).
   */
  master?: number | string;
  /**
   * `IFLA_MACVLAN_MACADDR_MODE` (0 ADD, 1 DEL, 2 FLUSH, 3 SET) in `IFLA_LINKINFO`/`IFLA_INFO_DATA`, with `infoKind`
   * (the link's own kind) required alongside: ADD/DEL send `macaddrs[0]`, SET the whole list.
   */
  macaddrMode?: 0 | 1 | 2 | 3;
  infoKind?: 'macvtap' | 'macvlan';
  macaddrs?: string[];
}

/** One route for `routeAdd`, already validated by `lib/`. */
export interface NativeRoute {
  family: 4 | 6;
  /** The destination prefix's address (`0.0.0.0` with `dstLen` 0 for a default route). */
  dst: string;
  dstLen: number;
  /** Next hop; absent: the destination is on the link (scope link). */
  gateway?: string;
}

/** `openTap` options, already defaulted and validated by `lib/`. */
export interface NativeTapOpenOptions {
  /** 1–256. More than one sets `IFF_MULTI_QUEUE` on every fd (`TUNSETIFF`). */
  queues: number;
  /** Keep `IFF_VNET_HDR` (the kernel's default on `open()`); `false` clears it for raw frames. */
  vnetHdr: boolean;
  /** `TUNSETVNETHDRSZ` (≥ 10), only with `vnetHdr`; 0 leaves the kernel's 10. */
  vnetHdrSize: number;
  /** `TUNSETOFFLOAD` bits (`TUN_F_CSUM` 1, `TSO4` 2, `TSO6` 4, `TSO_ECN` 8, `UFO` 16); -1 leaves them alone. */
  offloads: number;
  /** `O_NONBLOCK` on every fd. */
  nonblock: boolean;
  /** Also open one `/dev/vhost-net` fd per queue (checked with `VHOST_GET_FEATURES`). */
  vhost: boolean;
}

/** The result of {@link Binding.linkMulticastSync}: MACs lower-case, colon-separated. */
export interface NativeMulticastSync {
  device: string;
  added: string[];
  removed: string[];
  /** The list afterwards; `static` marks the `SIOCADDMULTI` entries (iproute2's `static`). */
  entries: Array<{ address: string; users: number; static: boolean }>;
}

/** The result of {@link Binding.tapOpen}. The fds are owned by the addon until `fdClose` or `fdRelease`. */
export interface NativeTapOpenResult {
  fds: number[];
  /** One `/dev/vhost-net` fd per queue (`vhostFds[i]` serves `fds[i]`) with `vhost`, else empty; owned like `fds`. */
  vhostFds: number[];
  ifindex: number;
  name: string;
  /** The node that was opened: `/dev/tapN`, or a private node (already unlinked) when `/dev/tapN` was missing or wrong. */
  path: string;
  major: number;
  minor: number;
  /** `true` when `/dev/tapN` was missing or was another device's and a private `mknod` node was used. */
  privateNode: boolean;
}

/** A received `SCM_RIGHTS` message. The fds are owned by the addon (like tap fds) until closed or released. */
export interface NativeReceivedFds {
  fds: number[];
  payload: Buffer;
}

/** One item of a link watcher's batch (see {@link Binding.linkWatch}). */
export type NativeLinkWatchItem =
  /** `new`/`del`: an `RTM_NEWLINK`/`RTM_DELLINK` notification; `dump`: a link of the running dump (see `linkWatch`). */
  | { type: 'new' | 'del' | 'dump'; link: LinkInfo }
  /** The dump ended; `intr` when the kernel flagged it `NLM_F_DUMP_INTR` (the table changed under it: dump again). */
  | { type: 'done'; intr: boolean }
  /** `recv` failed with `ENOBUFS`: the kernel dropped notifications because the socket buffer was full. */
  | { type: 'overrun' }
  /** The socket failed (or the dump was refused); the watcher should be closed. */
  | { type: 'error'; error: Error & NativeErrorFields };

/** The native addon. Each function's errno contract is documented next to its C++ definition. */
export interface Binding {
  /**
   * Registers the {@link NativeLinkFactory} of this environment (main thread or worker); until it is called, every
   * function that returns a link throws. `lib/binding.ts` calls it once, right after loading. Returns the names of the
   * arguments the factory is called with, in order. Throws a `TypeError` when `factory` declares another number of
   * parameters (`factory.length`).
   */
  setLinkFactory(factory: NativeLinkFactory): string[];
  /**
   * `RTM_NEWLINK` with `NLM_F_CREATE|NLM_F_EXCL|NLM_F_ECHO`: the result is the kernel's echo of the new link (Linux
   * >= 6.3), or an `RTM_GETLINK` of it when no echo came (older kernels; or `MACVTAP_NO_NLM_ECHO=1` in the
   * environment, a test hook). Netlink sockets come from a small per-namespace pool (no `setns` when one is idle).
   */
  linkCreate(req: NativeCreateLink, ns: NativeNetns): Promise<LinkInfo>;
  /** `RTM_GETLINK` for one link. Rejects `ENODEV` when there is none. */
  linkGet(key: NativeLinkKey, ns: NativeNetns): Promise<LinkInfo>;
  /** linkGet on the calling thread (no libuv pool hop): blocks for one kernel round trip; errors are thrown. */
  linkGetSync(key: NativeLinkKey, ns: NativeNetns): LinkInfo;
  /** `RTM_GETLINK` dump (`NLM_F_DUMP`, retried on `NLM_F_DUMP_INTR`), optionally only one `IFLA_INFO_KIND`. */
  linkList(kind: string | null, ns: NativeNetns): Promise<LinkInfo[]>;
  /** `RTM_NEWLINK` on an existing link (no create flags). */
  linkSet(key: NativeLinkKey, change: NativeSetLink, ns: NativeNetns): Promise<void>;
  /**
   * `mknod(path, S_IFCHR | 0600, makedev(major, minor))` on the calling thread; an existing path is `EEXIST` (never
   * replaced). Throws `EPERM` without `CAP_MKNOD`.
   */
  mknodChar(path: string, major: number, minor: number): void;
  /** `RTM_DELLINK` of one link. */
  linkDelete(key: NativeLinkKey, ns: NativeNetns): Promise<void>;
  /** `RTM_DELLINK` with `ifi_index = 0` and `IFLA_GROUP`: every link of the group, one RCU grace period. */
  linkDeleteGroup(group: number, ns: NativeNetns): Promise<void>;

  /** `RTM_NEWLINK` with `IFLA_INFO_SLAVE_KIND 'bridge'` + `IFLA_INFO_SLAVE_DATA`: a bridge port's switches. */
  linkSetBridgePort(key: NativeLinkKey, port: Partial<NativeBridgePort>, ns: NativeNetns): Promise<void>;
  /**
   * Opens a non-blocking `NETLINK_ROUTE` socket in `ns` (on a worker thread), joined to `RTNLGRP_LINK`, with
   * `SO_RCVBUF` = `rcvbuf` (0 leaves the system default), watches it with a libuv `uv_poll_t` on the main thread and
   * sends an `RTM_GETLINK` dump on it (subscribed first, dumped second: nothing falls in between). Each time the
   * socket is readable, up to 64 datagrams are decoded and passed to `onBatch` as one array. `onBatch` returns `true`
   * to have the addon dump again once the batch is handled (a dump running then is superseded: its parts are dropped);
   * a dump that cannot be sent arrives as an `error` item. Only `AF_UNSPEC` link messages are reported (not the
   * bridge's `AF_BRIDGE` port messages). In the links, `linkName` is null and so is the tap device (`tapMajor`).
   * Resolves with the watcher's handle: `fdClose(handle)` stops the poll and closes it and the socket.
   */
  linkWatch(ns: NativeNetns, opts: { rcvbuf: number }, onBatch: (batch: NativeLinkWatchItem[]) => boolean): Promise<number>;
  /** `RTM_NEWADDR` (`NLM_F_CREATE|NLM_F_EXCL`): `IFA_LOCAL` + `IFA_ADDRESS`, and `IFA_BROADCAST` for IPv4 below /31. */
  /**
   * A link's link-layer multicast list (`/proc/net/dev_mcast` of `ns`). With `wanted`, first makes its static
   * (`SIOCADDMULTI`, `ip maddr add`) entries exactly `wanted`; entries others hold are left alone. `null` only reads.
   */
  linkMulticastSync(key: NativeLinkKey, wanted: string[] | null, ns: NativeNetns): Promise<NativeMulticastSync>;
  addrAdd(key: NativeLinkKey, addr: NativeAddress, ns: NativeNetns): Promise<void>;
  /** `RTM_NEWROUTE`: `ip route add DST/LEN [via GATEWAY] dev LINK` in the main table. See native/route.cc. */
  routeAdd(key: NativeLinkKey, route: NativeRoute, ns: NativeNetns): Promise<void>;
  /**
   * Opens `/dev/net/tun` on a worker thread inside `ns` and `TUNSETIFF`s `IFF_TAP|IFF_NO_PI` (`|IFF_VNET_HDR`): a
   * non-persistent tap device that disappears when the fd closes.
   */
  tunCreate(name: string, opts: { vnetHdr: boolean }, ns: NativeNetns): Promise<NativeTunResult>;
  /** `SIOCETHTOOL` legacy set commands on a socket made inside `ns`. */
  ethtoolSetOffloads(key: NativeLinkKey, offloads: NativeOffloads, ns: NativeNetns): Promise<void>;
  /** `RTM_GETQDISC`/`RTM_GETTCLASS` dumps of one device, and `RTM_GETTFILTER` of its ingress qdisc when it has one. */
  tcDump(key: NativeLinkKey, ns: NativeNetns): Promise<NativeTcDump>;
  /** Sends the ops in order on one socket, each acknowledged; the first refusal stops the rest. */
  tcApply(key: NativeLinkKey, ops: NativeTcOp[], ns: NativeNetns): Promise<void>;

  /**
   * Runs nft commands (nft's own syntax) as one nftables transaction inside `ns` through libnftables, loaded at the
   * first call; resolves what the commands print (JSON with `json`). `device` only names the link in errors.
   */
  nftRun(commands: string, opts: { json?: boolean; device?: string }, ns: NativeNetns): Promise<string>;

  /**
   * Writes `value` to `/proc/sys/<key>` as namespace `ns` sees it (`ip netns exec NS sysctl -w`); `key` validated by
   * lib/. ENOENT (syscall 'open') when there is no such sysctl.
   */
  sysctlWrite(key: string, value: string, ns: NativeNetns): Promise<void>;
  /** Opens `queues` fds of a macvtap's char device, verified by `st_rdev`; see {@link NativeTapOpenResult}. */
  tapOpen(key: NativeLinkKey, opts: NativeTapOpenOptions, ns: NativeNetns): Promise<NativeTapOpenResult>;
  /**
   * Waits up to `timeoutMs` (`poll`) for one frame and reads it (at most `maxLength` bytes, vnet header included
   * when the queue has one). Resolves `null` on timeout.
   */
  tapRead(fd: number, maxLength: number, timeoutMs: number): Promise<Buffer | null>;
  /** `write()` of one frame (vnet header first when the queue has one). Returns bytes written. Sync: never blocks long. */
  tapWrite(fd: number, frame: Buffer): number;
  /** `VHOST_GET_FEATURES` on a vhost-net fd: the feature bits it offers. Changes nothing (no owner needed). */
  vhostGetFeatures(fd: number): bigint;
  /** `VHOST_SET_OWNER`: binds the vhost device to this process (as QEMU does first); `EBUSY` once anyone has. */
  vhostSetOwner(fd: number): void;

  /**
   * Ends a handle the addon owns, of any kind (a link watcher stops polling first). Throws `EBADF` for a number it does
   * not own (so a double close is caught in `lib/`).
   */
  fdClose(fd: number): void;
  /**
   * Stops owning a handle at once and closes it; a plain fd is closed on a worker thread: closing a tap queue waits
   * for an RCU grace period in the kernel, which must not block the event loop. Throws `EBADF` for a number it does
   * not own.
   */
  fdCloseAsync(fd: number): Promise<void>;
  /**
   * Stops owning a plain fd without closing it (the `detach()` handoff). Throws `EBADF` for a number it does not own,
   * and for a link watcher (its socket is only ever closed).
   */
  fdRelease(fd: number): void;
  /** The handles the addon owns in this environment (plain fds and watchers' sockets), ascending (leak tests). */
  ownedFds(): number[];

  /**
   * Sends `fds` with `SCM_RIGHTS` and `payload` (at least one byte is sent: `payload` or a single NUL) over a Unix
   * stream socket: `target` is a socket path (connected, sent, closed) or an fd of a connected socket.
   */
  sendFds(target: string | number, fds: number[], payload: Buffer): Promise<void>;
  /**
   * Receives one `SCM_RIGHTS` message: `source` is a socket path (bound and listened on — it must not exist —
   * one connection accepted, then the socket and path removed) or the fd of a connected socket. Rejects `ETIMEDOUT`
   * after `timeoutMs`. Received fds get `FD_CLOEXEC` (`MSG_CMSG_CLOEXEC`) and are owned by the addon.
   */
  recvFds(source: string | number, timeoutMs: number): Promise<NativeReceivedFds>;

  /**
   * Replaces the process image (`execvp`) after clearing `FD_CLOEXEC` on `keepFds`, which the new program inherits
   * (the registry goes with the old one). Returns only by throwing (`ENOENT`, `EACCES`, …); the fds then stay owned.
   */
  execvp(file: string, args: string[], keepFds: number[]): never;
}
