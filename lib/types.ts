/**
 * Public types of the `macvtap` package. User-facing names are iproute2's words (`mode: 'bridge'`, `mtu`, `txqlen`,
 * `group`); the kernel attribute each maps to is named in its doc so a reader can grep the kernel.
 */

/**
 * A network namespace to run an operation in: a path (`/run/netns/NAME` as made by `ip netns add`, or
 * `/proc/PID/ns/net`) or an open file descriptor of one. Only the worker thread doing the operation enters it; the
 * calling thread and the rest of the process stay where they are.
 */
export type Netns = string | number;

/** Options every link operation accepts. */
export interface NetnsOption {
  /** Run in this network namespace instead of the process's current one. */
  netns?: Netns;
}

/** The `signal` option of the create calls. */
export interface CreateSignalOption {
  /**
   * Aborts the create: aborted before the request is sent, nothing is sent; aborted while the kernel works on it, the
   * link it made is deleted again before the promise rejects. Either way the promise rejects with an `AbortError`
   * (`code` `'ABORT_ERR'`, the signal's reason as `cause`) and nothing is left behind.
   */
  signal?: AbortSignal;
}

/** The `owner` option of the create calls. */
export interface OwnerOption {
  /**
   * Owner tag (default `'macvtap'`): the link gets `IFLA_IFALIAS` = `macvtap:<owner>:<pid>:<starttime>` naming this
   * process, so {@link gc} can remove it once the process is gone. `false`: no tag. An explicit `alias` (where the
   * call takes one) wins over the tag: the link then carries the caller's alias and is untagged (gc never touches it).
   */
  owner?: string | false;
}

/** A link, by name (`'eth0'`) or by ifindex (`7`). */
export type LinkRef = string | number;

/**
 * macvlan/macvtap modes (`IFLA_MACVLAN_MODE`), as iproute2 names them.
 * - `bridge`: siblings on the same lower device talk to each other directly.
 * - `vepa`: all traffic goes out of the lower device; an external (hairpin) switch reflects sibling traffic.
 * - `private`: like vepa, but sibling traffic is dropped even if reflected.
 * - `passthru`: one macvtap per lower device, which it takes over (the lower goes promiscuous unless `nopromisc`).
 * - `source`: accepts only frames whose source MAC is in `sourceMacs`.
 */
export type MacvtapMode = 'bridge' | 'vepa' | 'private' | 'passthru' | 'source';

/** `IFLA_OPERSTATE`, RFC 2863 words as iproute2 prints them (lower case). */
export type OperState = 'unknown' | 'notpresent' | 'down' | 'lowerlayerdown' | 'testing' | 'dormant' | 'up';

/** What the package knows about one link: decoded from the kernel's `RTM_NEWLINK` message. */
export interface LinkInfo {
  /** `IFLA_IFNAME`. */
  name: string;
  /** `ifi_index`. Per network namespace. */
  ifindex: number;
  /** `IFLA_INFO_KIND` (`'macvtap'`, `'macvlan'`, `'veth'`, `'vlan'`, `'bridge'`, …); `null` for links with none (`lo`). */
  kind: string | null;
  /** `IFLA_ADDRESS`, lower-case `aa:bb:cc:dd:ee:ff`; `null` when the link has none. */
  mac: string | null;
  /** `IFLA_BROADCAST`. */
  broadcast: string | null;
  /** `IFLA_MTU`. */
  mtu: number;
  /** `IFLA_MIN_MTU`, when the kernel reports it. */
  minMtu: number | null;
  /** `IFLA_MAX_MTU`, when the kernel reports it. */
  maxMtu: number | null;
  /** `IFLA_TXQLEN`. */
  txqlen: number;
  /** Administratively up (`IFF_UP`). */
  up: boolean;
  /** Carrier present (`IFF_LOWER_UP`). */
  carrier: boolean;
  /** `IFF_PROMISC`. */
  promisc: boolean;
  /**
   * `IFLA_OPERSTATE`. The kernel's link watcher sets it asynchronously after a change of admin state or carrier, so
   * a link just created or set `up` usually reads `'unknown'` until then (up to a second later; `ip link show`
   * prints the same).
   */
  operstate: OperState;
  /** Raw `ifi_flags`. */
  flags: number;
  /**
   * The lower device (`IFLA_LINK`): its ifindex, its name when it is in the same namespace, and `netnsid`
   * (`IFLA_LINK_NETNSID`) when it lives in another one. `null` for links without a lower device. For a veth this is
   * the peer.
   */
  lower: { ifindex: number; name: string | null; netnsid: number | null } | null;
  /** `IFLA_MASTER` (e.g. the bridge a port is enslaved to). */
  master: number | null;
  /** `IFLA_GROUP` (0 is the default group). */
  group: number;
  /** `IFLA_IFALIAS`. */
  alias: string | null;
  /** `IFLA_NUM_TX_QUEUES`. */
  numTxQueues: number | null;
  /** `IFLA_NUM_RX_QUEUES`. */
  numRxQueues: number | null;
  /** For kinds `macvtap` and `macvlan`: `IFLA_INFO_DATA`. */
  macvlan: {
    mode: MacvtapMode;
    /** `MACVLAN_FLAG_NOPROMISC`: passthru does not put the lower device in promiscuous mode. */
    nopromisc: boolean;
    /** `MACVLAN_FLAG_NODST`. */
    nodst: boolean;
    /** Source mode's allowed source MACs (`IFLA_MACVLAN_MACADDR_DATA`). */
    sourceMacs: string[];
  } | null;
  /** For kind `vlan`: `IFLA_VLAN_ID` and `IFLA_VLAN_PROTOCOL`. */
  vlan: { id: number; protocol: '802.1Q' | '802.1ad' } | null;
  /**
   * For kind `macvtap`: its character device (read from sysfs as seen from the link's own namespace) and the
   * conventional node `/dev/tap<ifindex>`. The node may be missing, or (when another namespace has a macvtap with the
   * same ifindex) be another device's: {@link openTap} checks and copes; do not open `path` yourself without checking.
   */
  tap: { major: number; minor: number; path: string } | null;
  /**
   * For a port of a Linux bridge (`IFLA_INFO_SLAVE_KIND 'bridge'`): its switches as {@link setBridgePort} sets them.
   * `null` for other links. Optional only so hand-made `LinkInfo` values stay valid; the library always fills it.
   */
  bridgePort?: BridgePortInfo | null;
}

/** A bridge port's switches (`IFLA_BRPORT_*`), as `ip -d link show` prints them for a `bridge_slave`. */
export interface BridgePortInfo {
  /** `IFLA_BRPORT_MODE`: hairpin, frames may go back out of the port they came in on (a VEPA's external switch). */
  hairpin: boolean;
  /** `IFLA_BRPORT_LEARNING`: source MACs seen on the port are learned. */
  learning: boolean;
  /** `IFLA_BRPORT_UNICAST_FLOOD`: unknown unicast is flooded to the port. */
  flood: boolean;
}

/** Options of {@link createBridge}. Equivalent to `ip link add NAME type bridge [mtu N] [up]`. */
export interface CreateBridgeOptions extends NetnsOption, CreateSignalOption, OwnerOption {
  /** The bridge's name, 1–15 bytes. */
  name: string;
  /** Bring it up in the create request. Default `false`. */
  up?: boolean;
  mtu?: number;
}

/** Options of {@link setBridgePort}; absent switches are left as they are. */
export type SetBridgePortOptions = Partial<BridgePortInfo>;

/** Options of {@link createTap}. Equivalent to `ip tuntap add NAME mode tap` (not persistent) plus opening it. */
export interface CreateTapOptions extends NetnsOption {
  /** The device's name (1–15 bytes), or a template with one `%d` expanded by the kernel. */
  name: string;
  /** Frames carry a 10-byte virtio-net header (`IFF_VNET_HDR`). Default `false`. */
  vnetHdr?: boolean;
  /** Bring the device up once made. Default `false`. */
  up?: boolean;
}

/** Offload switches of {@link setOffloads}, `ethtool -K` names; absent ones are left as they are. */
export interface OffloadOptions {
  /** `tx`: transmit checksumming (`ETHTOOL_STXCSUM`). Turning it off also turns off TSO/SG in the kernel. */
  tx?: boolean;
  /** `rx`: receive checksumming (`ETHTOOL_SRXCSUM`). */
  rx?: boolean;
  /** `sg`: scatter-gather (`ETHTOOL_SSG`). */
  sg?: boolean;
  /** `tso`: TCP segmentation offload (`ETHTOOL_STSO`). */
  tso?: boolean;
  /** `gso`: generic segmentation offload (`ETHTOOL_SGSO`). */
  gso?: boolean;
  /** `gro`: generic receive offload (`ETHTOOL_SGRO`). */
  gro?: boolean;
}

/** Options of {@link createMacvtap}. Equivalent to `ip link add link LOWER name NAME type macvtap mode MODE …`. */
export interface CreateMacvtapOptions extends NetnsOption, CreateSignalOption, OwnerOption {
  /** The lower device, by name or ifindex, in the same namespace (`IFLA_LINK`). Required. */
  lower: LinkRef;
  /**
   * The new link's name, or a template with one `%d` (default `'macvtap%d'`): the lowest free number is taken, race-free
   * against concurrent creators (the kernel's `EEXIST` decides; no dump of all links per create).
   */
  name?: string;
  /** Default `'bridge'`. */
  mode?: MacvtapMode;
  /** The link's MAC (unicast, not all-zero); the kernel picks a random one when absent. */
  mac?: string;
  /** 68–65535; the kernel inherits the lower device's MTU when absent. */
  mtu?: number;
  /** `IFLA_TXQLEN`, 0–2^32-1. */
  txqlen?: number;
  /** Bring the link up in the create request itself. Default `false`. */
  up?: boolean;
  /** `IFLA_GROUP`, 0–2^32-1: lets {@link deleteGroup} remove many links in one grace period. */
  group?: number;
  /** `IFLA_IFALIAS`, at most 255 bytes. Given, it replaces the owner tag (see {@link OwnerOption.owner}). */
  alias?: string;
  /**
   * Create with this ifindex (1–2^31-1). Choosing a high, random one avoids the `/dev/tapN` name clash between
   * namespaces; the kernel refuses one the namespace already has with `EEXIST` (seen on 6.1 and 6.18).
   */
  ifindex?: number;
  /** passthru only: do not make the lower device promiscuous (`MACVLAN_FLAG_NOPROMISC`). */
  nopromisc?: boolean;
  /**
   * source mode only: the accepted source MACs. Absent or `[]`: none yet (as `ip link add … mode source` without
   * `macaddr`); add them later with {@link setLink}'s `sourceMacs`.
   */
  sourceMacs?: string[];
  /**
   * `false`: the host's IPv6 stack stays off the link — no link-local address (not even briefly), no DAD, no router
   * solicitations, no autoconfiguration (`addr_gen_mode` none and `disable_ipv6` set while the link is still down).
   * The guest's own IPv6 is untouched. Default `true` (the kernel's behaviour).
   */
  ipv6?: boolean;
  /** `IFF_ALLMULTI` from the create request itself (`allmulticast on`). Default `false`. */
  allmulti?: boolean;
  /**
   * The device's transmit and receive queue count (`IFLA_NUM_TX_QUEUES`, `IFLA_NUM_RX_QUEUES`), 1–256; the kernel's
   * default is 1. (The tap queues a reader opens with {@link openTap} are separate: up to 256 whatever this is.)
   */
  numQueues?: number;
}

/**
 * Options of {@link createHostShim}. Equivalent to `ip link add link LOWER name NAME type macvlan mode bridge` plus
 * `ip addr add` and `up`.
 */
export interface CreateHostShimOptions extends NetnsOption, CreateSignalOption, OwnerOption {
  /** The guests' lower device (the macvtaps' `lower`), by name or ifindex. Required. */
  lower: LinkRef;
  /** The shim's name or a `%d` template. Default `'mvshim%d'`. */
  name?: string;
  /** The host's addresses on the shim, `'ADDRESS/LEN'` (IPv4 or IPv6), at least one. */
  addresses: string[];
  /** The shim's MAC (unicast); the kernel picks a random one when absent. */
  mac?: string;
}

/** Options of {@link createTapNode}. */
export interface CreateTapNodeOptions extends NetnsOption {
  /** The node's owner uid, 0–4294967294. Required. */
  uid: number;
  /** The node's group, 0–4294967294. Required. */
  gid: number;
  /** Permission bits, 0–0o777 (e.g. `0o600`: only `uid` opens it). Required. */
  mode: number;
  /**
   * Where to make the node: a normalized absolute path in an existing directory, not existing yet, on a filesystem
   * mounted without `nodev` (systemd mounts `/run` and `/tmp` `nodev`). Default `/dev/macvtap/ID`. The consumer needs
   * search permission on every directory above it.
   */
  path?: string;
  /** The owner name in the node's record (as {@link OwnerOption.owner}; `false` is not allowed). Default `'macvtap'`. */
  owner?: string;
}

/** A tap node made by {@link createTapNode}. */
export interface TapNode {
  /** The node's path. */
  readonly path: string;
  /** The macvtap's device numbers (the node's `st_rdev`). */
  readonly major: number;
  readonly minor: number;
  /** The link's name and ifindex when the node was made. */
  readonly device: string;
  readonly ifindex: number;
  /** `true` once {@link TapNode.remove} ran. */
  readonly removed: boolean;
  /** Unlinks the node (only if it still is this device's) and its record. Idempotent. */
  remove(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@link createVlan}. Equivalent to `ip link add link LOWER name NAME type vlan id ID`. */
export interface CreateVlanOptions extends NetnsOption, CreateSignalOption, OwnerOption {
  /** The lower (physical) device, by name or ifindex. */
  lower: LinkRef;
  /** 802.1Q VLAN id, 1–4094. */
  id: number;
  /** Default `LOWER.ID` (when that fits 15 bytes; otherwise give a name). */
  name?: string;
  /** Default `'802.1Q'`. */
  protocol?: '802.1Q' | '802.1ad';
  mtu?: number;
  /** Default `false`. */
  up?: boolean;
  group?: number;
  alias?: string;
}

/** Options of {@link createVeth}. Equivalent to `ip link add NAME type veth peer name PEER [netns NS]`. */
export interface CreateVethOptions extends NetnsOption, CreateSignalOption, OwnerOption {
  name: string;
  peer: { name: string; mac?: string; /** Create the peer directly in this namespace. */ netns?: Netns };
  mac?: string;
  mtu?: number;
  up?: boolean;
  group?: number;
  alias?: string;
}

/** Changes {@link setLink} makes, in one `RTM_NEWLINK`. Equivalent to `ip link set dev LINK …`. */
export interface SetLinkOptions {
  /** Administrative state (`IFF_UP`). */
  up?: boolean;
  /**
   * Promiscuous mode as `ip link set dev LINK promisc on|off` asks for it (`IFF_PROMISC`): setting it twice counts
   * once, and clearing it leaves promiscuity that a bridge or a macvlan took for its own needs.
   */
  promisc?: boolean;
  /** All-multicast mode as `ip link set dev LINK allmulticast on|off` asks for it (`IFF_ALLMULTI`, counted once). */
  allmulti?: boolean;
  mtu?: number;
  mac?: string;
  /** Rename. While the link is up 6.1 refuses with `EBUSY`; 6.18 renames it. */
  name?: string;
  /** `''` removes the alias. */
  alias?: string;
  group?: number;
  txqlen?: number;
  /** Move the link into this namespace (`IFLA_NET_NS_FD`); its ifindex may change there, and it arrives down (the kernel closes a device it moves). */
  moveToNetns?: Netns;
  /**
   * Enslave the link to this master (a bridge), by name or ifindex in the same namespace (`IFLA_MASTER`); `null`
   * releases it (`ip link set dev LINK nomaster`).
   */
  master?: LinkRef | null;
  /**
   * Source mode only: change the list of accepted source MACs (`IFLA_MACVLAN_MACADDR_MODE`): add or delete one MAC,
   * set the whole list (`[]` empties it), or flush it.
   */
  sourceMacs?: { add: string } | { del: string } | { set: string[] } | { flush: true };
}

/** The route {@link addRoute} adds. */
export interface AddRouteOptions {
  /** The destination prefix, `ADDRESS/LEN` with no host bits set: `'0.0.0.0/0'`, `'::/0'`, `'10.1.0.0/16'`. */
  dst: string;
  /** The next hop, of `dst`'s family; absent: the destination is directly on the link. */
  gateway?: string;
}

/** Options of {@link listLinks}. Equivalent to `ip -d link show [type KIND]`. */
export interface ListLinksOptions extends NetnsOption {
  /** Only links of this `IFLA_INFO_KIND`. */
  kind?: string;
}

/** `TUNSETOFFLOAD` flags a tap queue accepts. */
export interface TapOffloads {
  /** `TUN_F_CSUM`: the reader accepts frames with partial checksums (required by every other offload). */
  csum?: boolean;
  /** `TUN_F_TSO4`. */
  tso4?: boolean;
  /** `TUN_F_TSO6`. */
  tso6?: boolean;
  /** `TUN_F_TSO_ECN`. */
  tsoEcn?: boolean;
  /** `TUN_F_UFO`. */
  ufo?: boolean;
}

/** Options of {@link openTap}. */
export interface OpenTapOptions extends NetnsOption {
  /** Number of queues (fds), 1–256. More than one sets `IFF_MULTI_QUEUE`. Default 1. */
  queues?: number;
  /**
   * Keep the virtio-net header in front of every frame (`IFF_VNET_HDR`, the kernel's default for macvtap, what QEMU
   * wants). `false` for raw Ethernet frames. Default `true`.
   */
  vnetHdr?: boolean;
  /** `TUNSETVNETHDRSZ`: 10, or 12 with mergeable rx buffers (10–65535). Only with `vnetHdr`. Default: the kernel's 10. */
  vnetHdrSize?: number;
  /** `TUNSETOFFLOAD`. Only with `vnetHdr`. Default: left as the kernel has it (none). */
  offloads?: TapOffloads;
  /** `O_NONBLOCK` on every fd (what QEMU expects). Default `false`. */
  nonblock?: boolean;
  /**
   * Also open one `/dev/vhost-net` fd per queue, for QEMU's `-netdev tap,…,vhost=on,vhostfds=…` (the in-kernel
   * virtio-net backend): each {@link TapQueue} then has its {@link TapQueue.vhostFd}, closed and detached with it. On a
   * kernel without vhost-net the open fails with `ENOENT` (no `/dev/vhost-net`) or `EOPNOTSUPP` (a node whose module
   * cannot load), naming `CONFIG_VHOST_NET`/`vhost_net`, and no fd is left open. Default `false`.
   */
  vhost?: boolean;
}

/** Options of {@link TapQueue.read}. */
export interface TapReadOptions {
  /** Milliseconds to wait for a frame; resolves `null` when none came. Default 1000. */
  timeout?: number;
  /** Largest frame accepted, bytes (vnet header included). Default 65550. */
  maxLength?: number;
}

/** What a {@link LinkEvent} of type `changed` says changed, compared with the last state the watcher knew. */
export type LinkChange =
  | 'up' | 'operstate' | 'carrier' | 'promisc' | 'flags' | 'mtu' | 'mac' | 'name' | 'lower' | 'master' | 'alias'
  | 'group' | 'txqlen';

/**
 * One event of {@link watchLinks}.
 * - `added`: a link appeared (`snapshot: true` for the links that existed when the watch started, with `snapshot`).
 * - `removed`: a link disappeared (deleted, or moved to another namespace); `link` is its last state.
 * - `changed`: `changes` lists what differs from `previous` (notifications that change nothing are not reported).
 * - `resync`: the kernel dropped notifications (`ENOBUFS`, the watcher was read too slowly); the watcher dumped the
 *   links again and the `added`/`removed`/`changed` events that follow are the differences it found.
 * - `ready`: the initial dump is reconciled: from here on every change is reported (after the snapshot's `added`s).
 */
export type LinkEvent =
  | { type: 'added'; link: LinkInfo; snapshot: boolean }
  | { type: 'removed'; link: LinkInfo }
  | { type: 'changed'; link: LinkInfo; previous: LinkInfo; changes: LinkChange[] }
  | { type: 'resync' }
  | { type: 'ready' };

/** Options of {@link watchLinks}. */
export interface WatchLinksOptions extends NetnsOption {
  /** Only report links of these `IFLA_INFO_KIND`s (`'macvtap'`, `'veth'`, …); `null` in the list means no kind (lo). */
  kinds?: (string | null)[];
  /** First yield every current link as `added` with `snapshot: true` (default `false`). */
  snapshot?: boolean;
  /** Aborting closes the watcher; a pending or later `next()` rejects with an `AbortError`. */
  signal?: AbortSignal;
  /**
   * `SO_RCVBUF` of the watcher's netlink socket in bytes (default 65536; the kernel doubles it, and caps it at
   * `net.core.rmem_max`). Small on purpose: a watcher that falls behind gets a quick `resync` instead of a backlog.
   */
  receiveBuffer?: number;
}

/** Options of {@link gc}. */
export interface GcOptions extends NetnsOption {
  /** Only links tagged by this owner (default: every owner's tagged links). */
  owner?: string;
  /** Report what would be removed without removing anything. Default `false`. */
  dryRun?: boolean;
}

/** What {@link gc} found. */
export interface GcResult {
  /** Links whose owner process is gone (removed, or with `dryRun` to be removed), as they were before removal. */
  removed: LinkInfo[];
  /** Tagged links whose owner process is alive (left alone). Untagged links are in neither list. */
  kept: LinkInfo[];
  /**
   * Devices whose port-security table ({@link applyPortSecurity}: `netdev mvtps-<device>`) was removed (with `dryRun`,
   * would be) because its device is gone or is another device now (another ifindex). Empty when libnftables is not
   * installed (nothing of ours can exist then).
   */
  portSecurity: string[];
  /**
   * Paths of tap nodes ({@link createTapNode}) of this namespace removed (with `dryRun`, to be removed) because their
   * link is gone or has other device numbers now, or their recorded namespace path is gone.
   */
  tapNodes: string[];
}
