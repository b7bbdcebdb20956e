/**
 * Link lifecycle over rtnetlink: create (macvtap, VLAN, veth), inspect, change, delete. Every call is one or two
 * netlink round trips on a worker thread; none blocks the event loop (a delete waits for an RCU grace period).
 */
import type { NativeCreateLink, NativeSetLink } from '../binding.js';
import { binding } from './binding.js';
import { abortError, callNative, callNativeSync, invalidValue } from './errors.js';
import type {
  CreateMacvtapOptions, CreateVethOptions, CreateVlanOptions, LinkInfo, LinkRef, ListLinksOptions, Netns,
  NetnsOption, SetLinkOptions,
} from './types.js';
import { ETH_P_8021AD, MACVLAN_FLAG_NOPROMISC } from './linkinfo.js';
import { createOwnership } from './owner.js';
import * as v from './validate.js';

const ETH_P_8021Q = 0x8100;

/**
 * The lower device as the addon takes it: an ifindex, or a name it resolves on the create's own netlink socket (one
 * native operation, no extra trip through the thread pool).
 */
function lowerRef(lower: LinkRef): number | string {
  const key = v.linkRef('lower', lower);
  return key.index ?? (key.name as string);
}

/** The link fields a create and a change share, validated and named as the addon takes them. */
interface LinkFields { address?: string; mtu?: number; txqlen?: number; up?: boolean; group?: number; alias?: string }

function linkFields(opts: { mac?: unknown; mtu?: unknown; txqlen?: unknown; up?: unknown; group?: unknown; alias?: unknown }): LinkFields {
  const f: LinkFields = {};
  if (opts.mac !== undefined) f.address = v.mac('mac', opts.mac);
  if (opts.mtu !== undefined) f.mtu = v.mtu('mtu', opts.mtu);
  if (opts.txqlen !== undefined) f.txqlen = v.u32('txqlen', opts.txqlen);
  if (opts.up !== undefined) f.up = v.bool('up', opts.up);
  if (opts.group !== undefined) f.group = v.group('group', opts.group);
  if (opts.alias !== undefined) f.alias = v.alias('alias', opts.alias);
  return f;
}

/** Common fields of every create request: the shared link fields plus a chosen ifindex. */
function commonCreate(opts: Parameters<typeof linkFields>[0] & { ifindex?: unknown; owner?: unknown }): Partial<NativeCreateLink> {
  const req: Partial<NativeCreateLink> = linkFields(opts);
  if (opts.ifindex !== undefined) req.ifindex = v.ifindex('ifindex', opts.ifindex);
  return { ...req, ...createOwnership(opts, req.alias, req.group) };
}

/**
 * Sends one create request. With a `signal` (see {@link CreateSignalOption}): aborted before, nothing is sent; aborted
 * while the kernel works, the link it made is deleted before the promise rejects with an `AbortError`. Should that
 * delete fail (other than `ENODEV`: someone removed it already), its error is thrown instead — the link may remain,
 * and carries its owner tag for {@link gc}.
 * @internal
 */
export async function createLink(req: NativeCreateLink, ns: Netns | null, signal: AbortSignal | undefined): Promise<LinkInfo> {
  const aborted = (s: AbortSignal): Error => abortError(`The create of ${req.kind} link "${req.name}" was aborted`, s);
  if (signal?.aborted) throw aborted(signal);
  const info = await callNative(() => binding.linkCreate(req, ns));
  if (signal?.aborted) {
    try {
      await callNative(() => binding.linkDelete({ index: info.ifindex }, ns));
    } catch (e) {
      if ((e as { code?: unknown }).code !== 'ENODEV') throw e;
    }
    throw aborted(signal);
  }
  return info;
}

const MACVTAP_KEYS = ['lower', 'name', 'mode', 'mac', 'mtu', 'txqlen', 'up', 'group', 'alias', 'ifindex', 'nopromisc', 'sourceMacs', 'numQueues', 'ipv6', 'allmulti', 'netns', 'owner', 'signal'] as const;

/**
 * Turns the host side's IPv6 off on a link that is still down: `addr_gen_mode` 1 (none: no link-local is generated,
 * even if IPv6 is enabled again later) then `disable_ipv6` 1 (no address at all, no DAD, no router solicitation, no
 * autoconfiguration from router advertisements). A link-local address is only generated when a link goes up
 * (`NETDEV_UP` in addrconf), so done before the first up the link never has one, not even for a moment.
 */
async function disableHostIpv6(name: string, ns: Netns | null): Promise<void> {
  await callNative(() => binding.sysctlWrite(`net/ipv6/conf/${name}/addr_gen_mode`, '1', ns));
  await callNative(() => binding.sysctlWrite(`net/ipv6/conf/${name}/disable_ipv6`, '1', ns));
}

/**
 * The steps after the create request for `ipv6: false`: IPv6 off while the link is down, then up if asked. Any
 * failure deletes the link (it would otherwise be up with IPv6, or half-configured) and rethrows.
 */
async function finishCreate(info: LinkInfo, ns: Netns | null, ipv6Off: boolean, up: boolean): Promise<LinkInfo> {
  if (!ipv6Off) return info;
  return finishOrDelete(info, ns, async () => {
    await disableHostIpv6(info.name, ns);
    if (up) await callNative(() => binding.linkSet({ index: info.ifindex }, { up: true }, ns));
  });
}

/**
 * Runs the steps that complete a link just created (`steps`), then returns its info as it is now; if a step fails the
 * link is deleted (it would otherwise stay half-configured) and that step's error rethrown. @internal
 */
export async function finishOrDelete(info: LinkInfo, ns: Netns | null, steps: () => Promise<void>): Promise<LinkInfo> {
  try {
    await steps();
    return await callNative(() => binding.linkGet({ index: info.ifindex }, ns));
  } catch (e) {
    try {
      await callNative(() => binding.linkDelete({ index: info.ifindex }, ns));
    } catch {
      // Gone already, or undeletable: the step's error is the one to report; the link keeps its owner tag for gc.
    }
    throw e;
  }
}

/**
 * Creates a macvtap on a lower device and returns its info (with its tap char device).
 *
 * A wireless (802.11) lower device is refused: an access point accepts frames only from the station's own MAC, so a
 * macvtap there would give its guest no traffic at all. The check reads `/sys/class/net/LOWER/wireless` and
 * `…/phy80211` in the lower's own namespace (a private sysfs view, as for the tap device); a process that cannot get
 * that view (no `CAP_SYS_ADMIN` for the private mount of another namespace's sysfs) skips the check.
 *
 * L2 hygiene: `ipv6: false` keeps the host's IPv6 stack off the link (no link-local address ever, no DAD, no
 * autoconfiguration: the link is created down, `addr_gen_mode` none and `disable_ipv6` are set, then it goes up if
 * `up` asked for it); `allmulti: true` sets `IFF_ALLMULTI` in the create request itself.
 *
 * Equivalent to: `ip link add link LOWER name NAME type macvtap mode MODE [address MAC] [mtu N] [allmulticast on] …`,
 * with `ipv6: false` followed by `sysctl -w net.ipv6.conf.NAME.addr_gen_mode=1 net.ipv6.conf.NAME.disable_ipv6=1`
 * and `ip link set NAME up`.
 *
 * @example
 * ```ts
 * const tap = await createMacvtap({ lower: 'eth1', mode: 'bridge', mac: '52:54:00:12:34:56', up: true });
 * ```
 * @throws TypeError/RangeError for bad options, before anything is sent.
 * @throws {@link MacvtapError} `ENODEV` (no such lower), `EEXIST` (name or chosen ifindex taken; the message says
 *   which),
 *   `EINVAL` (e.g. a second passthru on one lower), `EPERM` (no `CAP_NET_ADMIN`), `EOPNOTSUPP` (syscall
 *   `'RTM_NEWLINK'`, nothing created) when the lower device is wireless.
 */
export async function createMacvtap(options: CreateMacvtapOptions): Promise<LinkInfo> {
  const opts = v.options('options', options);
  v.knownKeys('options', opts, MACVTAP_KEYS);
  if (opts.lower === undefined) throw invalidValue('lower', 'is required (the lower device, by name or ifindex)', undefined);
  v.linkRef('lower', opts.lower);
  // Absent means the default; null is not absent (it is refused like any other wrong type).
  const name = v.linkName('name', opts.name === undefined ? 'macvtap%d' : opts.name, true);
  const mode = v.mode('mode', opts.mode === undefined ? 'bridge' : opts.mode);
  let flags = 0;
  if (opts.nopromisc !== undefined && v.bool('nopromisc', opts.nopromisc)) {
    if (mode !== 'passthru') throw invalidValue('nopromisc', "applies only to mode 'passthru'", opts.nopromisc);
    flags |= MACVLAN_FLAG_NOPROMISC;
  }
  let macaddrs: string[] | undefined;
  if (opts.sourceMacs !== undefined) {
    if (mode !== 'source') throw invalidValue('sourceMacs', "applies only to mode 'source'", opts.sourceMacs);
    if (!Array.isArray(opts.sourceMacs)) throw invalidValue('sourceMacs', 'must be an array of MAC addresses', opts.sourceMacs);
    macaddrs = opts.sourceMacs.map((m, i) => v.mac(`sourceMacs[${i}]`, m));
  }
  const ipv6Off = opts.ipv6 !== undefined && !v.bool('ipv6', opts.ipv6);
  const req: NativeCreateLink = { kind: 'macvtap', name, ...commonCreate(opts), macvlanMode: v.MODE_VALUES[mode] };
  if (flags) req.macvlanFlags = flags;
  if (opts.numQueues !== undefined) req.numQueues = v.integer('numQueues', opts.numQueues, 1, v.MAX_TAP_QUEUES);
  if (macaddrs) req.macvlanMacaddrs = macaddrs;
  if (opts.allmulti !== undefined && v.bool('allmulti', opts.allmulti)) req.allmulti = true;
  const ns = v.nsOf(opts);
  req.link = lowerRef(opts.lower);
  // With IPv6 off the link goes up only after the sysctls: created up, it would get a link-local at once.
  const up = req.up === true;
  if (ipv6Off) delete req.up;
  return finishCreate(await createLink(req, ns, v.signal(opts)), ns, ipv6Off, up);
}

const VLAN_KEYS = ['lower', 'id', 'name', 'protocol', 'mtu', 'up', 'group', 'alias', 'netns', 'owner', 'signal'] as const;

/**
 * Creates an 802.1Q (or 802.1ad) VLAN sub-interface.
 *
 * Equivalent to: `ip link add link LOWER name NAME type vlan id ID [protocol 802.1ad]`.
 *
 * @throws {@link MacvtapError} `EOPNOTSUPP` when the kernel has no 802.1Q support (its message says so).
 */
export async function createVlan(options: CreateVlanOptions): Promise<LinkInfo> {
  const opts = v.options('options', options);
  v.knownKeys('options', opts, VLAN_KEYS);
  if (opts.lower === undefined) throw invalidValue('lower', 'is required (the lower device, by name or ifindex)', undefined);
  const lowerKey = v.linkRef('lower', opts.lower);
  const id = v.integer('id', opts.id, 1, 4094);
  let name: string;
  if (opts.name !== undefined) name = v.linkName('name', opts.name);
  else if (lowerKey.name !== undefined && Buffer.byteLength(`${lowerKey.name}.${id}`) <= v.MAX_NAME_BYTES) name = `${lowerKey.name}.${id}`;
  else throw invalidValue('name', `is required when "LOWER.${id}" does not fit ${v.MAX_NAME_BYTES} bytes or lower is an ifindex`, undefined);
  let protocol = ETH_P_8021Q;
  if (opts.protocol !== undefined) {
    if (opts.protocol !== '802.1Q' && opts.protocol !== '802.1ad') throw invalidValue('protocol', "must be '802.1Q' or '802.1ad'", opts.protocol);
    protocol = opts.protocol === '802.1ad' ? ETH_P_8021AD : ETH_P_8021Q;
  }
  const req: NativeCreateLink = { kind: 'vlan', name, ...commonCreate(opts), vlanId: id, vlanProtocol: protocol };
  const ns = v.nsOf(opts);
  req.link = lowerRef(opts.lower);
  try {
    return await createLink(req, ns, v.signal(opts));
  } catch (e) {
    if (e instanceof Error && (e as { code?: string }).code === 'EOPNOTSUPP') {
      e.message = `${e.message} (this kernel has no 802.1Q VLAN support: CONFIG_VLAN_8021Q is off or the 8021q module is missing)`;
    }
    throw e;
  }
}

const VETH_KEYS = ['name', 'peer', 'mac', 'mtu', 'up', 'group', 'alias', 'netns', 'owner', 'signal'] as const;

/**
 * Creates a veth pair, the peer optionally directly in another namespace. (The lower device of choice where there is
 * no physical NIC to spare: this kernel has no `dummy`.)
 *
 * Equivalent to: `ip link add NAME type veth peer name PEER [netns NS]`.
 */
export async function createVeth(options: CreateVethOptions): Promise<LinkInfo> {
  const opts = v.options('options', options);
  v.knownKeys('options', opts, VETH_KEYS);
  const name = v.linkName('name', opts.name);
  if (!v.isPlainObject(opts.peer)) throw invalidValue('peer', 'is required: { name, mac?, netns? }', opts.peer);
  v.knownKeys('peer', opts.peer, ['name', 'mac', 'netns']);
  const peer: NonNullable<NativeCreateLink['peer']> = { name: v.linkName('peer.name', opts.peer.name) };
  if (opts.peer.mac !== undefined) peer.address = v.mac('peer.mac', opts.peer.mac);
  if (opts.peer.netns !== undefined) peer.netns = v.netns('peer.netns', opts.peer.netns);
  const req: NativeCreateLink = { kind: 'veth', name, ...commonCreate(opts), peer };
  return createLink(req, v.nsOf(opts), v.signal(opts));
}

/**
 * One link's info.
 *
 * Equivalent to: `ip -d link show dev LINK`.
 * @throws {@link MacvtapError} `ENODEV` when there is no such link.
 */
export async function getLink(link: LinkRef, options?: NetnsOption): Promise<LinkInfo> {
  const key = v.linkRef('link', link);
  const ns = v.netnsOnly(options);
  return callNative(() => binding.linkGet(key, ns));
}

/**
 * {@link getLink} without the thread hop: the request runs on the calling thread and blocks it for one kernel round
 * trip (a macvtap adds a sysfs read for its tap device). For hot paths — link state checks inside event handlers,
 * polling loops — where a Promise's trip through libuv's thread pool would cost several times the round trip itself
 * (README, "Control plane", has the measurements). Caveats: older kernels take the RTNL lock for `RTM_GETLINK`, so
 * there the call can wait while another process creates or deletes links (6.1 does; 6.18 does not); the first call
 * for a namespace also opens its netlink socket.
 *
 * Equivalent to: `ip -d link show dev LINK`.
 * @throws TypeError/RangeError for bad arguments; {@link MacvtapError} `ENODEV` when there is no such link.
 */
export function getLinkSync(link: LinkRef, options?: NetnsOption): LinkInfo {
  const key = v.linkRef('link', link);
  const ns = v.netnsOnly(options);
  return callNativeSync(() => binding.linkGetSync(key, ns));
}

/**
 * Every link of a namespace, optionally of one kind.
 *
 * Equivalent to: `ip -d link show [type KIND]`.
 */
export async function listLinks(options?: ListLinksOptions): Promise<LinkInfo[]> {
  const opts = v.options('options', options);
  v.knownKeys('options', opts, ['kind', 'netns']);
  let kind: string | null = null;
  if (opts.kind !== undefined) {
    if (typeof opts.kind !== 'string' || !/^[a-z0-9_.-]{1,31}$/i.test(opts.kind)) throw invalidValue('kind', 'must be a link kind such as "macvtap"', opts.kind);
    kind = opts.kind;
  }
  const ns = v.nsOf(opts);
  return callNative(() => binding.linkList(kind, ns));
}

const SET_KEYS = ['up', 'promisc', 'allmulti', 'mtu', 'mac', 'name', 'alias', 'group', 'txqlen', 'moveToNetns', 'master', 'sourceMacs'] as const;

/** `MACVLAN_MACADDR_*` (include/uapi/linux/if_link.h). */
const MACADDR_MODE = { add: 0, del: 1, flush: 2, set: 3 } as const;

/** Validates `sourceMacs` of a change: exactly one of `add`/`del` (a MAC), `set` (MACs), `flush: true`. */
function sourceMacsChange(x: unknown): { mode: 0 | 1 | 2 | 3; macs: string[] } {
  if (!v.isPlainObject(x)) throw invalidValue('sourceMacs', 'must be { add: MAC } | { del: MAC } | { set: MAC[] } | { flush: true }', x);
  v.knownKeys('sourceMacs', x, ['add', 'del', 'set', 'flush']);
  const keys = Object.keys(x).filter((k) => x[k] !== undefined);
  if (keys.length !== 1) throw invalidValue('sourceMacs', 'must have exactly one of add, del, set, flush', x);
  const op = keys[0] as keyof typeof MACADDR_MODE;
  if (op === 'flush') {
    if (x.flush !== true) throw invalidValue('sourceMacs.flush', 'must be true', x.flush);
    return { mode: MACADDR_MODE.flush, macs: [] };
  }
  if (op === 'set') {
    if (!Array.isArray(x.set)) throw invalidValue('sourceMacs.set', 'must be an array of MAC addresses', x.set);
    return { mode: MACADDR_MODE.set, macs: x.set.map((m, i) => v.mac(`sourceMacs.set[${i}]`, m)) };
  }
  return { mode: MACADDR_MODE[op], macs: [v.mac(`sourceMacs.${op}`, x[op])] };
}

/**
 * Changes a link in one request and returns its new info (`null` when it was moved to another namespace).
 *
 * `sourceMacs` changes a source-mode macvtap's (or macvlan's) list of accepted source MACs in the same request:
 * `{ add: MAC }`, `{ del: MAC }`, `{ set: [MAC, …] }` (replaces the list; `[]` empties it) or `{ flush: true }`.
 * The link's kind and mode are checked first (one `RTM_GETLINK`): another kind or mode is a TypeError, nothing sent.
 *
 * Equivalent to: `ip link set dev LINK [up|down] [promisc on|off] [allmulticast on|off] [mtu N] [address MAC] [name NEW] [alias A] [group G] [netns NS]
 * [master BR | nomaster] [type macvtap macaddr add|del MAC | set MAC… | flush]`.
 * @throws {@link MacvtapError} `ENODEV`, `EBUSY` (rename while up: 6.1 refuses, 6.18 allows), `EADDRINUSE` (a MAC
 *   clash shows at up), `EINVAL`. (Adding a MAC already listed or deleting one not listed is no error: the kernel
 *   ignores both, as `ip` shows.)
 */
export async function setLink(link: LinkRef, change: SetLinkOptions, options?: NetnsOption): Promise<LinkInfo | null> {
  const key = v.linkRef('link', link);
  const c = v.options('change', change);
  v.knownKeys('change', c, SET_KEYS);
  const ns = v.netnsOnly(options);
  const req: NativeSetLink = linkFields(c);
  if (c.promisc !== undefined) req.promisc = v.bool('promisc', c.promisc);
  if (c.allmulti !== undefined) req.allmulti = v.bool('allmulti', c.allmulti);
  if (c.name !== undefined) req.name = v.linkName('name', c.name);
  if (c.moveToNetns !== undefined) req.netns = v.netns('moveToNetns', c.moveToNetns);
  if (c.master !== undefined) {
    if (c.master === null) {
      req.master = 0;
    } else {
      const m = v.linkRef('master', c.master);
      req.master = m.index ?? (m.name as string);
    }
  }
  const macs = c.sourceMacs === undefined ? undefined : sourceMacsChange(c.sourceMacs);
  let index = key.index;
  if (macs) {
    const cur = await callNative(() => binding.linkGet(key, ns));
    if ((cur.kind !== 'macvtap' && cur.kind !== 'macvlan') || cur.macvlan?.mode !== 'source') {
      throw invalidValue('sourceMacs', `applies only to a macvtap or macvlan in mode 'source' ("${cur.name}" is ${cur.kind ?? 'no kind'}${cur.macvlan ? ` in mode '${cur.macvlan.mode}'` : ''})`, c.sourceMacs);
    }
    index = cur.ifindex;
    req.macaddrMode = macs.mode;
    req.infoKind = cur.kind;
    if (macs.macs.length > 0 || macs.mode === MACADDR_MODE.set) req.macaddrs = macs.macs;
  }
  // Resolve to an ifindex first: a rename would otherwise leave us unable to find the link afterwards.
  index ??= (await callNative(() => binding.linkGet(key, ns))).ifindex;
  const at = index;
  await callNative(() => binding.linkSet({ index: at }, req, ns));
  if (req.netns !== undefined) return null;
  return callNative(() => binding.linkGet({ index: at }, ns));
}

/**
 * Deletes one link (waits for the kernel's RCU grace period, off the event loop).
 *
 * Equivalent to: `ip link del dev LINK`.
 * @throws {@link MacvtapError} `ENODEV` when there is no such link.
 */
export async function deleteLink(link: LinkRef, options?: NetnsOption): Promise<void> {
  const key = v.linkRef('link', link);
  const ns = v.netnsOnly(options);
  await callNative(() => binding.linkDelete(key, ns));
}

/**
 * Deletes every link of a group in one `RTM_DELLINK`: one grace period for all of them, where deleting them one by one
 * waits one grace period per link. Group 0 (the default group, which holds `lo` and every untagged link) is refused.
 *
 * Equivalent to: `ip link del group GROUP`.
 */
export async function deleteGroup(group: number, options?: NetnsOption): Promise<void> {
  const g = v.integer('group', group, 1, 0xffff_ffff);
  const ns = v.netnsOnly(options);
  await callNative(() => binding.linkDeleteGroup(g, ns));
}
