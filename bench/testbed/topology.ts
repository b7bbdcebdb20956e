/**
 * The datapath testbed: per topology, a "guest" namespace (the host plumbing and the guest endpoint's tap) and a
 * "peer" namespace (the peer endpoint's UDP socket), joined by a veth pair. Only the plumbing between the guest
 * endpoint and the veth changes from one topology to the next:
 *
 * - `macvtap-bridge`: a macvtap (bridge mode) on the veth's guest-side end; the guest endpoint owns its queue.
 * - `macvtap-vepa`: the same in VEPA mode; the veth's far end is in a Linux bridge with hairpin on (the "external
 *   switch", which carries the peer's address), so guest↔guest traffic would be reflected too.
 * - `tap+linuxbridge`: a plain tap (`/dev/net/tun`) and the veth end in a Linux bridge (Neutron's linuxbridge agent).
 * - `tap+ovs`: the same tap and veth end as ports of an Open vSwitch bridge run by the harness's own daemons
 *   (Neutron's OVS agent); tx checksum offload off on both veth ends (OVS's userspace datapath forwards partial
 *   checksums unfilled, so UDP would arrive with bad sums and be dropped).
 * - `veth-direct`: no tap at all; the guest side is a socket in the guest namespace — the floor.
 *
 * The secured topologies (topology-ids.ts) are three of these carrying the same port policy (secpolicy.ts: the
 * guest's MAC and addresses, N = 0, 10 or 100 stateless security group rules):
 *
 * - `macvtap-bridge+nftN`: `applyPortSecurity` on the macvtap (nftables netdev egress/ingress hooks of `mvt0`).
 * - `tap+linuxbridge+nftN` (label `…@tap`): the library's same ruleset on the tap's netdev hooks. A tap sees the
 *   guest's frames at its **ingress** hook (the guest's write is the tap receiving) and frames to the guest at its
 *   egress hook — the other way round from a macvtap — which `applyPortSecurity` knows from the device's kind.
 *   (Neutron's iptables driver filters in the bridge through br_netfilter instead: same place in
 *   the path, one hook per direction, but linear iptables chains.)
 * - `tap+ovs+flowsN` (label `ovs-<datapath>+flowsN`): OpenFlow flows in the harness's OVS replacing the NORMAL-only
 *   table: anti-spoofing and one flow per rule and masked port, in the tables of Neutron's OVS firewall driver,
 *   stateless (no conntrack); layout in secpolicy.ts's `ovsFlows`.
 *
 * The anti-spoofing probe (bench/security/) builds the same topologies plus `macvtap-private` (private mode, behind the
 * same hairpinning external bridge as VEPA, so the switch would reflect guest↔guest traffic) and, with
 * `{ secondGuest: true }`, a second guest on the same lower device or bridge (`mvt1` / `tap1`). The datapath benchmark
 * asks for neither, so its topologies are exactly as described above.
 *
 * Every link is made with the library; namespaces with `ip netns add` (netns.ts), OVS with its own tools.
 * Each topology is built once and kept for the whole run, so repetitions can interleave topologies cheaply.
 */
import {
  addAddress, applyPortSecurity, createBridge, createMacvtap, createTap, createVeth, getLink, openTap, setBridgePort, setLink, setOffloads,
  type TapQueue,
} from 'macvtap';
import { BENCH_PREFIX, TestNetns } from './netns.js';
import { detectOvs, type OvsAvailability, OvsInstance } from './ovs.js';
import { run } from './command.js';
import { benchPolicy, ovsFlows } from './secpolicy.js';
import { topologyParts, type TopologyId } from './topology-ids.js';

export { TOPOLOGY_IDS, type TopologyId } from './topology-ids.js';

/** The guest's identity and the peer's, the same in every topology (each has its own namespaces). */
export const ADDR = {
  guestIp: '10.77.0.1',
  peerIp: '10.77.0.2',
  /** The network of both (the secured topologies' rules allow the benchmark's traffic from/to it). */
  peerNet: '10.77.0.0',
  prefix: 24,
  /** The guest's MAC on plain taps (locally administered); on macvtaps the guest must use the macvtap's own MAC. */
  tapGuestMac: '02:00:00:77:00:01',
  /** The second guest (anti-spoofing probe only): its IP, and its MAC on plain taps. */
  guest2Ip: '10.77.0.3',
  tapGuest2Mac: '02:00:00:77:00:02',
  /**
   * IPv6 addresses of the guest, the peer and the second guest (anti-spoofing probe only: it builds IPv6 frames by
   * hand and never configures them on a link).
   */
  guestIp6: 'fd00:77::1',
  peerIp6: 'fd00:77::2',
  guest2Ip6: 'fd00:77::3',
  peerPort: 7000,
  guestPort: 7001,
} as const;

/** The guest side of a topology: a tap fd the native guest endpoint drives, or (veth-direct) a socket's namespace. */
export type GuestSide =
  | { kind: 'tap'; queue: TapQueue; fd: number; vnetHdrSize: 0 | 10 | 12; mac: string; ip: string }
  | { kind: 'socket'; netns: string; ip: string };

/** A namespace made for the run: `name` for `ip -n`, `path` for the library's `netns` option. */
export type Ns = Pick<TestNetns, 'name' | 'path'>;

/** What {@link buildTopology} can build: the datapath benchmark's topologies and the probe's `macvtap-private`. */
export type AttachmentId = TopologyId | 'macvtap-private';

/** Extras of {@link buildTopology} that only the anti-spoofing probe asks for. */
export interface BuildOptions {
  /** A second guest on the same lower device / bridge: `mvt1` (same macvtap mode) or `tap1`. Default false. */
  secondGuest?: boolean;
}

/** A built topology, ready for endpoints. */
export interface Topology<I extends AttachmentId = TopologyId> {
  id: I;
  /** Row label: the id, except OVS, labelled with the datapath really used (`ovs-system` / `ovs-netdev`). */
  label: string;
  guestNs: Ns;
  peerNs: Ns;
  guest: GuestSide;
  /** The second guest ({@link BuildOptions.secondGuest}), else null. */
  guest2: GuestSide | null;
  /** Host-side devices in the guest namespace: the guests' (`mvt0`/`tap0`, `mvt1`/`tap1`); empty for veth-direct. */
  guestDevices: string[];
  /** The peer namespace's end of the wire (`vp0`), where everything from the guest namespace arrives. */
  peerWire: string;
  /** Where the peer endpoint binds, and the MAC the guest sends to. */
  peer: { ip: string; mac: string };
  /** Offload changes made for this topology (`ethtool -K` equivalents), for the report. */
  offloads: string[];
  /** The OVS instance of `tap+ovs`. */
  ovs: OvsInstance | null;
  /** The port policy a secured topology carries and how it was installed; null for the unfiltered ones. */
  filter: TopologyFilter | null;
  /** Closes the tap, stops OVS, deletes both namespaces. Idempotent. */
  destroy(): Promise<void>;
}

/** What a secured topology installed. */
export interface TopologyFilter {
  kind: 'nft' | 'flows';
  /** Security group rules in the policy (0: port security only). */
  rules: number;
  /** Where and what, for the report: the device and table, or the bridge and flow count. */
  description: string;
}

/** A topology that could not be built here, and why (printed in its row instead of numbers). */
export interface UnavailableTopology {
  id: TopologyId;
  label: string;
  reason: string;
}

/** The row label of a topology before it is built (OVS: the datapath it will use). */
export function topologyLabel(id: AttachmentId, ovs: OvsAvailability): string {
  if (id === 'macvtap-private') return id;
  const { base, filter } = topologyParts(id);
  if (base === 'tap+ovs') {
    const name = ovs.available ? `ovs-${ovs.datapath}` : 'tap+ovs';
    return filter ? `${name}+flows${filter.rules}` : name;
  }
  // The nftables hooks of tap+linuxbridge+nftN are the tap's own: say so.
  if (base === 'tap+linuxbridge' && filter) return `${id}@tap`;
  return id;
}

function ensureMac(mac: string | null, what: string): string {
  if (!mac) throw new Error(`${what} has no MAC address`);
  return mac;
}

/** State collected while building, so a failure half-way still tears down what exists. */
class Builder {
  guestNs: TestNetns | null = null;
  peerNs: TestNetns | null = null;
  queues: TapQueue[] = [];
  ovs: OvsInstance | null = null;
  private done = false;

  async teardown(): Promise<void> {
    if (this.done) return;
    this.done = true;
    // The OVS daemon holds the tap as a port: stop it before the namespace goes.
    if (this.ovs) await this.ovs.stop();
    for (const q of this.queues) await q.close().catch(() => undefined);
    this.guestNs?.destroy();
    this.peerNs?.destroy();
  }
}

/**
 * Builds one topology. `ovs` is {@link detectOvs}'s answer (only used for `tap+ovs`). Throws — after removing whatever
 * it had made — when a step fails.
 */
export async function buildTopology<I extends AttachmentId = TopologyId>(
  id: I,
  ovs: OvsAvailability = detectOvs(),
  options: BuildOptions = {},
): Promise<Topology<I>> {
  const second = options.secondGuest === true;
  const parts = id === 'macvtap-private' ? { base: 'macvtap-private' as const, filter: null } : topologyParts(id as TopologyId);
  const base = parts.base;
  if (second && base === 'veth-direct') throw new Error('veth-direct has no tap: it cannot carry a second guest');
  if (second && parts.filter) throw new Error(`${id}: the secured topologies carry one guest`);
  if (base === 'tap+ovs' && !ovs.available) throw new Error(ovs.reason);
  const b = new Builder();
  try {
    b.guestNs = TestNetns.create(BENCH_PREFIX);
    b.peerNs = TestNetns.create(BENCH_PREFIX);
    const g = b.guestNs.path;
    const p = b.peerNs.path;
    const cidr = (ip: string): string => `${ip}/${ADDR.prefix}`;
    const offloads: string[] = [];

    // The wire: vh0 (guest namespace) ↔ vp0 (peer namespace); for veth-direct the guest end carries the guest's IP.
    const hostEnd = base === 'veth-direct' ? 'vg0' : 'vh0';
    await createVeth({ name: hostEnd, peer: { name: 'vp0', netns: p }, up: true, netns: g });
    await setLink('vp0', { up: true }, { netns: p });

    let peerMac: string;
    if (base === 'macvtap-vepa' || base === 'macvtap-private') {
      // The external switch: a bridge in the peer namespace with hairpin on the port facing the VEPA.
      await createBridge({ name: 'brx', up: true, netns: p });
      await setLink('vp0', { master: 'brx' }, { netns: p });
      await setBridgePort('vp0', { hairpin: true }, { netns: p });
      await addAddress('brx', cidr(ADDR.peerIp), { netns: p });
      peerMac = ensureMac((await getLink('brx', { netns: p })).mac, 'brx');
    } else {
      await addAddress('vp0', cidr(ADDR.peerIp), { netns: p });
      peerMac = ensureMac((await getLink('vp0', { netns: p })).mac, 'vp0');
    }

    let guest: GuestSide;
    let guest2: GuestSide | null = null;
    const guestDevices: string[] = [];
    if (base === 'veth-direct') {
      await addAddress('vg0', cidr(ADDR.guestIp), { netns: g });
      guest = { kind: 'socket', netns: g, ip: ADDR.guestIp };
    } else if (base === 'macvtap-bridge' || base === 'macvtap-vepa' || base === 'macvtap-private') {
      const mode = base === 'macvtap-bridge' ? 'bridge' : base === 'macvtap-vepa' ? 'vepa' : 'private';
      const names = second ? ['mvt0', 'mvt1'] : ['mvt0'];
      const sides: GuestSide[] = [];
      for (const [i, name] of names.entries()) {
        const info = await createMacvtap({ lower: 'vh0', name, mode, up: true, netns: g });
        const [q] = await openTap(name, { netns: g, vnetHdr: true });
        b.queues.push(q!);
        sides.push(tapSide(q!, ensureMac(info.mac, name), i === 0 ? ADDR.guestIp : ADDR.guest2Ip));
        guestDevices.push(name);
      }
      guest = sides[0]!;
      guest2 = sides[1] ?? null;
    } else {
      const names = second ? ['tap0', 'tap1'] : ['tap0'];
      const sides: GuestSide[] = [];
      for (const [i, name] of names.entries()) {
        const q = await createTap({ name, vnetHdr: true, netns: g });
        b.queues.push(q);
        await setLink(name, { up: true }, { netns: g });
        sides.push(tapSide(q, i === 0 ? ADDR.tapGuestMac : ADDR.tapGuest2Mac, i === 0 ? ADDR.guestIp : ADDR.guest2Ip));
        guestDevices.push(name);
      }
      if (base === 'tap+linuxbridge') {
        await createBridge({ name: 'br0', up: true, netns: g });
        for (const name of names) await setLink(name, { master: 'br0' }, { netns: g });
        await setLink('vh0', { master: 'br0' }, { netns: g });
      } else {
        if (!ovs.available) throw new Error(ovs.reason);
        await setOffloads('vh0', { tx: false }, { netns: g });
        await setOffloads('vp0', { tx: false }, { netns: p });
        offloads.push('vh0 (guest ns): tx off', 'vp0 (peer ns): tx off');
        b.ovs = await OvsInstance.start(ovs, b.guestNs.name);
        await b.ovs.addBridge('br0', ['tap0', 'vh0', ...names.slice(1)]);
      }
      guest = sides[0]!;
      guest2 = sides[1] ?? null;
    }

    let filter: TopologyFilter | null = null;
    if (parts.filter) {
      if (guest.kind !== 'tap') throw new Error(`${id}: no tap to secure`);
      const dev = guestDevices[0]!;
      const policy = benchPolicy(guest.mac, guest.ip, parts.filter.rules, {
        guestPort: ADDR.guestPort, peerPort: ADDR.peerPort, peerNet: ADDR.peerNet, prefix: ADDR.prefix,
      });
      if (parts.filter.kind === 'flows') {
        if (!b.ovs) throw new Error(`${id}: no Open vSwitch`);
        const flows = ovsFlows(policy, dev, 'vh0');
        await b.ovs.replaceFlows('br0', flows);
        const n = flows.split('\n').filter((l) => l.startsWith('table=')).length;
        filter = { kind: 'flows', rules: parts.filter.rules, description: `${n} OpenFlow flows on br0 (tables 0, 71, 72, 81, 82; stateless, no conntrack); ${parts.filter.rules} security group rules` };
      } else {
        await applyPortSecurity(dev, policy, { netns: g });
        // The library puts the guest's side where the guest's frames pass: a macvtap transmits what the guest writes
        // (egress hook), a tap receives it (ingress hook).
        const where = base === 'macvtap-bridge'
          ? `netdev table mvtps-${dev}: chain from-guest on hook egress, to-guest on hook ingress (applyPortSecurity)`
          : `netdev table mvtps-${dev}: chain from-guest on the tap's hook ingress, to-guest on hook egress (applyPortSecurity)`;
        filter = { kind: 'nft', rules: parts.filter.rules, description: `${where}; ${parts.filter.rules} security group rules` };
      }
    }

    const guestNs = b.guestNs;
    const peerNs = b.peerNs;
    return {
      id,
      label: topologyLabel(id, ovs),
      guestNs,
      peerNs,
      guest,
      guest2,
      guestDevices,
      peerWire: 'vp0',
      peer: { ip: ADDR.peerIp, mac: peerMac },
      offloads,
      ovs: b.ovs,
      filter,
      destroy: () => b.teardown(),
    };
  } catch (e) {
    await b.teardown();
    throw e;
  }
}

function tapSide(q: TapQueue, mac: string, ip: string = ADDR.guestIp): GuestSide {
  const size = q.vnetHdrSize;
  if (size !== 0 && size !== 10 && size !== 12) throw new Error(`unexpected vnet header size ${size} on ${q.device}`);
  return { kind: 'tap', queue: q, fd: q.fd, vnetHdrSize: size, mac, ip };
}
