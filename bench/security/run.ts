/**
 * The anti-spoofing conformance probe: per attachment, a testbed with two guests (A, under test, and B) on the same
 * lower device or bridge and a peer across a veth (testbed/topology.ts with `secondGuest`), then frames written
 * to A's tap fd (or sent by the peer past A) and looked for, by a unique marker, where they should not — or should —
 * arrive: on the peer's wire (an AF_PACKET socket on its veth end), in B's queue, in A's queue. Where a frame arrives,
 * a reply addressed to the source it claimed is sent back and A's queue is watched for it.
 *
 * Every case is sent `attempts` times with distinct markers; a target that shows none of them within `waitMs` counts as
 * `dropped`. Before each case every party announces itself with a broadcast (and the probe waits until the peer saw
 * both guests' announcements), so learning switches start from the same, correct forwarding table.
 *
 * The `+portsec` rows are the macvtap attachment beside them with the library's port security applied to both guests
 * (cases.ts has what each case sends).
 */
import { randomBytes } from 'node:crypto';
import { release } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADDR, buildTopology, topologyLabel, type AttachmentId, type GuestSide, type Topology } from '../testbed/topology.js';
import { detectOvs, type OvsAvailability } from '../testbed/ovs.js';
import { applyPortSecurity, getPortSecurity, setLink } from 'macvtap';
import type { Progress } from '../report/progress.js';
import { captureMarked, PacketSocket } from './capture.js';
import { frameAddrs } from '../testbed/frames.js';
import { BROADCAST_IP, BROADCAST_MAC, caseSpecs, FORGED, IP6, probeFrame, udp, type Party, type ProbeFrame } from './cases.js';
import {
  CASES, cellOf, isPortsec, LEGEND, PORTSEC_BASE, REPLY_CASES, type Attachment, type AttachmentRow, type CaseId, type CaseResult,
  type PortSecurityRow, type SecurityMatrix, type SecurityOptions,
} from './schema.js';

export { FORGED } from './cases.js';

/** Defaults of `macvtap bench security` (and of the probe the datapath benchmark embeds). */
export const SECURITY_DEFAULTS: SecurityOptions = {
  attachments: [
    'macvtap-bridge', 'macvtap-bridge+portsec', 'macvtap-vepa', 'macvtap-vepa+portsec', 'macvtap-private',
    'macvtap-private+portsec', 'tap+linuxbridge', 'tap+ovs',
  ],
  attempts: 3,
  waitMs: 250,
};

/** Gap between a claiming frame and the reply that follows it (reply phase). */
const PACE_MS = 40;
/** How long guest A keeps claiming B's MAC before the `stolen-mac` replies (see there). */
const MOVE_SETTLE_MS = 1200;
/** Every probe payload starts with these bytes, then a per-case nonce, then the attempt number. */
const MAGIC = Buffer.from('MVT-SPOOF');
/** Owner tag of the port-security tables the probe applies (they go with the testbed's namespace). */
const PORTSEC_OWNER = 'macvtap-bench';

/**
 * Test hooks: called with each built testbed before it is probed (e.g. to start an independent capture in it), with
 * the attachment it was built for (`topology.id` is the base attachment of a `+portsec` row).
 */
export interface SecurityHooks {
  onBuilt?(topology: Topology<AttachmentId>, attachment: Attachment): Promise<void> | void;
  /** Called after the probe of an attachment, before its teardown. */
  onProbed?(topology: Topology<AttachmentId>, row: AttachmentRow): Promise<void> | void;
}

type Tap = Extract<GuestSide, { kind: 'tap' }>;

function tapOf(side: GuestSide | null, what: string): Tap {
  if (!side || side.kind !== 'tap') throw new Error(`${what} has no tap queue`);
  return side;
}

/** The parties of one testbed: send a frame as one of them, and watch what one of them receives. */
class Parties {
  constructor(readonly a: Tap, readonly b: Tap, readonly wire: PacketSocket, readonly peer: { mac: string; ip: string }) {}

  send(from: Party, frame: ProbeFrame, marker: Buffer): void {
    if (from === 'peer') this.wire.send(probeFrame(frame, marker));
    else {
      const g = from === 'guest-a' ? this.a : this.b;
      g.queue.write(probeFrame(frame, marker, g.vnetHdrSize));
    }
  }

  fd(who: Party): number {
    return who === 'peer' ? this.wire.fd : who === 'guest-a' ? this.a.fd : this.b.fd;
  }

  /**
   * Sends `attempts` marked frames from `from` and counts the distinct ones `to` receives within `waitMs` (after the
   * last send). With `paced`, the frames are `PACE_MS` apart and `paced()` runs before each one.
   */
  async exchange(
    from: Party, to: Party, frame: ProbeFrame, opts: SecurityOptions, paced?: () => void,
  ): Promise<{ reached: number; seen: ReturnType<typeof frameAddrs> }> {
    const nonce = Buffer.concat([MAGIC, randomBytes(6)]);
    const vnet = to === 'peer' ? 0 : to === 'guest-a' ? this.a.vnetHdrSize : this.b.vnetHdrSize;
    const spread = paced ? opts.attempts * PACE_MS : 0;
    // The capture is queued first; frames that arrive before it reads wait in the socket / queue.
    const got = captureMarked(this.fd(to), nonce, opts.attempts, opts.waitMs + spread);
    for (let i = 0; i < opts.attempts; i++) {
      if (paced) {
        paced();
        await sleep(PACE_MS);
      }
      this.send(from, frame, Buffer.concat([nonce, Buffer.from([i])]));
    }
    const frames = await got;
    const attempts = new Set<number>();
    for (const f of frames) {
      const at = f.indexOf(nonce);
      if (at >= 0 && at + nonce.length < f.length) attempts.add(f[at + nonce.length]!);
    }
    return { reached: attempts.size, seen: frames[0] ? frameAddrs(frames[0], vnet) : null };
  }

  /** Every party announces its MAC with a broadcast; resolves once the peer's wire saw both guests' announcements. */
  async announce(opts: SecurityOptions): Promise<boolean> {
    const nonce = Buffer.concat([MAGIC, randomBytes(6)]);
    const got = captureMarked(this.wire.fd, nonce, 2, opts.waitMs * 4);
    const bcast = (mac: string, ip: string): ProbeFrame => udp('udp', mac, ip, BROADCAST_MAC, BROADCAST_IP);
    this.send('guest-a', bcast(this.a.mac, this.a.ip), Buffer.concat([nonce, Buffer.from([0])]));
    this.send('guest-b', bcast(this.b.mac, this.b.ip), Buffer.concat([nonce, Buffer.from([1])]));
    this.send('peer', bcast(this.peer.mac, this.peer.ip), Buffer.concat([nonce, Buffer.from([2])]));
    return (await got).length === 2;
  }
}

/**
 * Puts a link in promiscuous mode (`ip link set promisc on`): what libvirt does to a guest's host-side device when
 * the guest turns promiscuous mode on and its interface has `trustGuestRxFilters='yes'`.
 */
async function setPromisc(netnsPath: string, dev: string): Promise<void> {
  const info = await setLink(dev, { promisc: true }, { netns: netnsPath });
  if (!info?.promisc) throw new Error(`setLink(${dev}, { promisc: true }) left it non-promiscuous`);
}

async function probeTopology(t: Topology<AttachmentId>, wire: PacketSocket, opts: SecurityOptions): Promise<CaseResult[]> {
  const p = new Parties(tapOf(t.guest, 'guest A'), tapOf(t.guest2, 'guest B'), wire, t.peer);
  const results = new Map<CaseId, CaseResult>();
  const ids = {
    a: { mac: p.a.mac, ip: p.a.ip, ip6: IP6.a }, b: { mac: p.b.mac, ip: p.b.ip, ip6: IP6.b }, peer: { ...p.peer, ip6: IP6.peer },
  };
  for (const spec of caseSpecs(ids)) {
    if (spec.id === 'promisc-guest') await setPromisc(t.guestNs.path, t.guestDevices[0]!);
    // A learning switch must know both guests and the peer before every case (stolen-mac moves B's MAC to A's port).
    if (!(await p.announce(opts))) throw new Error(`${t.label}: the peer never saw both guests' broadcasts: the testbed does not forward`);
    const sent = await p.exchange(spec.from, spec.target, spec.frame, opts);
    let repliesSent: number | null = null;
    let repliesBack: number | null = null;
    if (REPLY_CASES.includes(spec.id) && spec.replyFrom) {
      repliesSent = 0;
      repliesBack = 0;
      if (sent.reached > 0) {
        // Addressed to the source the frame claimed, as the target saw it.
        const seen = sent.seen ?? spec.frame;
        const kind = spec.frame.kind === 'udp6' ? 'udp6' : 'udp';
        const reply = udp(kind, seen.dstMac, seen.dstIp, seen.srcMac, seen.srcIp);
        repliesSent = opts.attempts;
        // Guest A keeps sending as the address it claims (an attacker would), so a switch that learns late still
        // gets its chance; each reply follows one such frame by PACE_MS.
        const again = Buffer.concat([MAGIC, randomBytes(6)]);
        const keepClaiming = spec.from === 'guest-a' ? () => p.send('guest-a', spec.frame, again) : undefined;
        if (spec.id === 'stolen-mac') {
          // Moving a MAC that a learning switch already has on another port can take effect late: OVS moves the entry
          // at once but keeps forwarding by the old datapath flow until its revalidator runs (seen with OVS 3.1's
          // userspace datapath: up to ≈0.7 s). The attacker keeps claiming B's MAC for MOVE_SETTLE_MS before the peer
          // replies.
          for (let waited = 0; waited < MOVE_SETTLE_MS; waited += PACE_MS) {
            keepClaiming!();
            await sleep(PACE_MS);
          }
        }
        repliesBack = (await p.exchange(spec.replyFrom, 'guest-a', reply, opts, keepClaiming)).reached;
      }
    }
    results.set(spec.id, {
      case: spec.id,
      cell: cellOf(sent.reached, repliesBack),
      target: spec.target,
      sent: opts.attempts,
      reached: sent.reached,
      repliesSent,
      repliesBack,
      frame: spec.frame,
    });
  }
  return CASES.map((id) => results.get(id)!);
}

/** The notes stored with the matrix: how each cell was measured. */
function notes(ovsDatapath: 'system' | 'netdev' | null, portsec: boolean): string[] {
  const out = [
    'Guest A is the guest under test: every frame is written to its tap fd with a virtio-net header saying "no ' +
      'offload", as QEMU would. Guest B is a second guest on the same lower device (macvtaps, same mode) or the same ' +
      'bridge (taps). The peer is the far end of a veth, in its own namespace; "reaches the peer" means an AF_PACKET ' +
      "socket on the peer's veth end saw the frame, whatever its destination MAC.",
    'Replies are sent as layer-2 frames addressed to the source the frame claimed (its source MAC and IP as captured), ' +
      "from the peer's wire socket or from guest B's tap fd — the echo a host or guest would send once it has resolved " +
      'that address; ARP is not involved, so the matrix shows what the attachment does with the return traffic.',
    'macvtap-vepa and macvtap-private hang off an external switch: a Linux bridge in the peer namespace with hairpin ' +
      'on the port facing them, so it reflects guest↔guest frames (private mode is documented to block them even then).',
    'Before every case each guest and the peer broadcast an announcement and the probe waits until the peer saw both ' +
      "guests' announcements, so learning switches (Linux bridge, OVS NORMAL) have both guests' MACs on their ports.",
    "promisc-*: guest A's host-side device (mvt0/tap0) is set promiscuous with `ip link set … promisc on`, as libvirt " +
      "does for a guest that turns promiscuous mode on when its interface has trustGuestRxFilters='yes'. A guest " +
      'cannot do it through its fd. Linux bridge ports are promiscuous anyway.',
    'Each case sends several frames with distinct markers; "dropped" means none arrived within the wait, so a one-off ' +
      'loss is not read as blocking.',
    'IPv6, ARP and neighbour discovery cases are judged on the peer\'s wire. Guest A is fd00:77::1 (its EUI-64 ' +
      'link-local address for the router advertisement), the peer fd00:77::2; no link has these addresses configured: ' +
      'the frames are built by hand. Gratuitous ARP is sent as a broadcast reply (sender IP = target IP); neighbour ' +
      'advertisements go to ff02::1 with the override flag and a target link-layer address option; the marker rides ' +
      'in the Ethernet padding (ARP) or in an experimental ND option (RFC 4727) after the others (ND).',
  ];
  if (portsec) {
    out.push('…+portsec rows: the attachment beside them, then applyPortSecurity (lib/portsec: nftables netdev ' +
      "egress/ingress chains on the macvtap) on both guests' macvtaps with each guest's own MAC and its IPv4 and IPv6 " +
      'address as the policy, no allowed address pairs and no security group rules (anti-spoofing only: stateless ' +
      "groups would need rules for the probe's own traffic and would not change what the anti-spoofing chain drops, " +
      "which runs first). The row's portSecurity holds guest A's nftables drop counters by reason after the probe.");
  }
  if (ovsDatapath) {
    out.push(`tap+ovs runs the default flow table (a single NORMAL action: a learning switch) on OVS's ${ovsDatapath === 'netdev' ? 'userspace netdev datapath (no openvswitch kernel module here), labelled ovs-netdev' : 'kernel datapath, labelled ovs-system'}; Neutron adds its own anti-spoofing flows on top, which this row does not have.`);
  }
  return out;
}

/** Attachments probed one after another in each lane; `tap+ovs` with one more, its daemons take seconds to start. */
const LANES: Attachment[][] = [
  ['tap+ovs', 'macvtap-private+portsec'],
  ['macvtap-bridge', 'macvtap-vepa', 'macvtap-bridge+portsec'],
  ['macvtap-private', 'tap+linuxbridge', 'macvtap-vepa+portsec'],
];

/** Why port security cannot run here (no libnftables, a kernel without the egress hook), or null to rethrow. */
function portsecUnavailable(e: unknown): string | null {
  const err = e as { code?: string; syscall?: string; message?: string };
  if ((err.code === 'ENOENT' && err.syscall === 'dlopen') || err.code === 'EOPNOTSUPP') return `port security unavailable: ${err.message}`;
  return null;
}

/**
 * Applies port security to both guests' macvtaps: each guest's own MAC, IPv4 and IPv6 address, no rules. Returns
 * what the report records of guest A's policy.
 */
async function applyGuestsPortSecurity(t: Topology<AttachmentId>): Promise<PortSecurityRow> {
  const netns = t.guestNs.path;
  const guests = [
    { side: tapOf(t.guest, 'guest A'), dev: t.guestDevices[0]!, ip6: IP6.a },
    { side: tapOf(t.guest2, 'guest B'), dev: t.guestDevices[1]!, ip6: IP6.b },
  ];
  for (const g of guests) {
    await applyPortSecurity(g.dev, { mac: g.side.mac, ips: [g.side.ip, g.ip6] }, { netns, owner: PORTSEC_OWNER });
  }
  const a = guests[0]!;
  return { policy: { mac: a.side.mac, ips: [a.side.ip, a.ip6], rules: 'none' }, table: `mvtps-${a.dev}`, dropped: {} };
}

/** Builds, probes and tears down one attachment's testbed. */
async function probeAttachment(id: Attachment, ovs: OvsAvailability, opts: SecurityOptions, hooks: SecurityHooks, namespaces: string[]): Promise<AttachmentRow> {
  const t1 = performance.now();
  const base: AttachmentId = isPortsec(id) ? PORTSEC_BASE[id] : id;
  const label = isPortsec(id) ? id : topologyLabel(base, ovs);
  const unavailable = (reason: string): AttachmentRow => (
    { attachment: id, label, guestA: null, guestB: null, portSecurity: null, unavailable: reason, cases: [], durationS: 0 }
  );
  if (id === 'tap+ovs' && !ovs.available) return unavailable(ovs.reason);
  const t = await buildTopology(base, ovs, { secondGuest: true });
  let row: AttachmentRow;
  try {
    namespaces.push(t.guestNs.name, t.peerNs.name);
    let portSecurity: PortSecurityRow | null = null;
    if (isPortsec(id)) {
      try {
        portSecurity = await applyGuestsPortSecurity(t);
      } catch (e) {
        const why = portsecUnavailable(e);
        if (why === null) throw e;
        return unavailable(why);
      }
    }
    await hooks.onBuilt?.(t, id);
    const wire = await PacketSocket.open(t.peerWire, t.peerNs.path);
    try {
      const cases = await probeTopology(t, wire, opts);
      const a = tapOf(t.guest, 'guest A');
      const b = tapOf(t.guest2, 'guest B');
      if (portSecurity) {
        const state = await getPortSecurity(t.guestDevices[0]!, { netns: t.guestNs.path });
        if (state === null) throw new Error(`${label}: the port security of ${t.guestDevices[0]} is gone after the probe`);
        portSecurity.dropped = state.dropped;
      }
      row = {
        attachment: id,
        label,
        guestA: { mac: a.mac, ip: a.ip, ip6: IP6.a, device: t.guestDevices[0]! },
        guestB: { mac: b.mac, ip: b.ip, ip6: IP6.b, device: t.guestDevices[1]! },
        portSecurity,
        unavailable: null,
        cases,
        durationS: 0,
      };
      await hooks.onProbed?.(t, row);
    } finally {
      wire.close();
    }
  } finally {
    await t.destroy();
  }
  row.durationS = (performance.now() - t1) / 1000;
  return row;
}

/**
 * Runs the probe on every attachment in `opts.attachments`. Each testbed is built, probed and torn down on its own
 * (also on failure; SIGINT/SIGTERM go through bench/testbed/cleanup.ts). Three lanes run side by side ({@link LANES}),
 * so the probe costs about as long as the slowest lane; each lane has at most one capture waiting on libuv's pool at
 * a time, which leaves a pool thread for the lanes' netlink calls. `tap+ovs` without Open vSwitch installed is an `n/a`
 * row, so is a `+portsec` row without libnftables or the netdev egress hook; any other failure throws (after every
 * lane ended).
 */
export async function runSecurityProbe(opts: SecurityOptions, progress: Progress, hooks: SecurityHooks = {}): Promise<SecurityMatrix> {
  const startedAt = new Date();
  const t0 = performance.now();
  const ovs = detectOvs();
  const namespaces: string[] = [];
  const done = new Map<Attachment, AttachmentRow>();
  const lane = async (ids: Attachment[]): Promise<void> => {
    for (const id of ids) {
      const row = await probeAttachment(id, ovs, opts, hooks, namespaces);
      done.set(id, row);
      progress.step(row.unavailable ? `${row.label}: n/a` : `${row.label} probed`);
    }
  };
  progress.phase('security', opts.attachments.length);
  try {
    const lanes = LANES.map((l) => l.filter((id) => opts.attachments.includes(id)));
    const settled = await Promise.allSettled(lanes.map(lane));
    for (const r of settled) if (r.status === 'rejected') throw r.reason;
  } finally {
    progress.end();
  }
  const rows = opts.attachments.map((id) => done.get(id)!);
  const ranOvs = ovs.available && opts.attachments.includes('tap+ovs');
  return {
    options: opts,
    kernel: `Linux ${release()}`,
    ovs: ranOvs ? { version: ovs.version, datapath: ovs.datapath } : null,
    namespaces,
    startedAt: startedAt.toISOString(),
    durationS: (performance.now() - t0) / 1000,
    legend: { ...LEGEND },
    notes: notes(ranOvs ? ovs.datapath : null, opts.attachments.some(isPortsec)),
    rows,
  };
}

/** The addresses the probe uses, for the report and tests. */
export const PROBE_ADDRESSES = { ...ADDR, ...FORGED } as const;
