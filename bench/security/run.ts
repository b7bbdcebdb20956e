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
 */
import { randomBytes } from 'node:crypto';
import { release } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADDR, buildTopology, topologyLabel, type AttachmentId, type GuestSide, type Topology } from '../testbed/topology.js';
import { detectOvs, type OvsAvailability } from '../testbed/ovs.js';
import { setLink } from 'macvtap';
import type { Progress } from '../report/progress.js';
import { captureMarked, PacketSocket } from './capture.js';
import { buildUdpFrame, frameAddrs, vnetHdr, type FrameAddrs } from '../testbed/frames.js';
import {
  CASES, cellOf, LEGEND, REPLY_CASES, type Attachment, type AttachmentRow, type CaseId, type CaseResult, type SecurityMatrix, type SecurityOptions,
} from './schema.js';

/** Defaults of `macvtap bench security` (and of the probe the datapath benchmark embeds). */
export const SECURITY_DEFAULTS: SecurityOptions = {
  attachments: ['macvtap-bridge', 'macvtap-vepa', 'macvtap-private', 'tap+linuxbridge', 'tap+ovs'],
  attempts: 3,
  waitMs: 250,
};

/** Addresses nobody in the testbed owns: the forged source, the unknown unicast destination. */
export const FORGED = {
  mac: '02:00:00:66:66:01',
  ip: '10.77.0.66',
  unknownMac: '02:00:00:66:66:99',
  unknownIp: '10.77.0.99',
} as const;

const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';
const BROADCAST_IP = '10.77.0.255';
/** Gap between a claiming frame and the reply that follows it (reply phase). */
const PACE_MS = 40;
/** How long guest A keeps claiming B's MAC before the `stolen-mac` replies (see there). */
const MOVE_SETTLE_MS = 1200;
/** Every probe payload starts with these bytes, then a per-case nonce, then the attempt number. */
const MAGIC = Buffer.from('MVT-SPOOF');
/** UDP ports of every probe frame (either direction). */
const PROBE_PORT = 7099;

/**
 * A probe frame: UDP/IPv4 from `a.srcMac`/`a.srcIp` to `a.dstMac`/`a.dstIp` carrying `payload`, padded to the 60-byte
 * Ethernet minimum, after `vnetHdrSize` zero bytes (a virtio-net header saying "nothing to offload"). The probe
 * matches frames by their payload at layer 2; no host stack has to take them in.
 */
function probeFrame(a: FrameAddrs, payload: Buffer, vnetHdrSize: 0 | 10 | 12 = 0): Buffer {
  const frame = buildUdpFrame({ ...a, srcPort: PROBE_PORT, dstPort: PROBE_PORT, payload, pad: true });
  return vnetHdrSize ? Buffer.concat([vnetHdr(vnetHdrSize), frame]) : frame;
}

/** Test hooks: called with each built testbed before it is probed (e.g. to start an independent capture in it). */
export interface SecurityHooks {
  onBuilt?(topology: Topology<AttachmentId>): Promise<void> | void;
  /** Called after the probe of an attachment, before its teardown. */
  onProbed?(topology: Topology<AttachmentId>, row: AttachmentRow): Promise<void> | void;
}

type Tap = Extract<GuestSide, { kind: 'tap' }>;
type Party = 'guest-a' | 'guest-b' | 'peer';

function tapOf(side: GuestSide | null, what: string): Tap {
  if (!side || side.kind !== 'tap') throw new Error(`${what} has no tap queue`);
  return side;
}

/** The parties of one testbed: send a frame as one of them, and watch what one of them receives. */
class Parties {
  constructor(readonly a: Tap, readonly b: Tap, readonly wire: PacketSocket, readonly peer: { mac: string; ip: string }) {}

  send(from: Party, addrs: FrameAddrs, payload: Buffer): void {
    if (from === 'peer') this.wire.send(probeFrame(addrs, payload));
    else {
      const g = from === 'guest-a' ? this.a : this.b;
      g.queue.write(probeFrame(addrs, payload, g.vnetHdrSize));
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
    from: Party, to: Party, addrs: FrameAddrs, opts: SecurityOptions, paced?: () => void,
  ): Promise<{ reached: number; seen: FrameAddrs | null }> {
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
      this.send(from, addrs, Buffer.concat([nonce, Buffer.from([i])]));
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
    const to = { dstMac: BROADCAST_MAC, dstIp: BROADCAST_IP };
    this.send('guest-a', { srcMac: this.a.mac, srcIp: this.a.ip, ...to }, Buffer.concat([nonce, Buffer.from([0])]));
    this.send('guest-b', { srcMac: this.b.mac, srcIp: this.b.ip, ...to }, Buffer.concat([nonce, Buffer.from([1])]));
    this.send('peer', { srcMac: this.peer.mac, srcIp: this.peer.ip, ...to }, Buffer.concat([nonce, Buffer.from([2])]));
    return (await got).length === 2;
  }
}

/** One case: who sends what to whom, and who replies (to the claimed source) when it arrives. */
interface CaseSpec {
  id: CaseId;
  from: Party;
  target: Party;
  addrs: FrameAddrs;
  replyFrom: Party | null;
}

/**
 * The cases in the order they run (the matrix shows them in {@link CASES} order): `stolen-mac` last, because it moves
 * B's MAC to A's port in a learning switch, and a switch may keep forwarding by that for a while after B announces
 * itself again.
 */
function caseSpecs(p: Parties): CaseSpec[] {
  const { a, b, peer } = p;
  const fromPeer = { srcMac: peer.mac, srcIp: peer.ip };
  const toPeer = { dstMac: peer.mac, dstIp: peer.ip };
  const toB = { dstMac: b.mac, dstIp: b.ip };
  const toUnknown = { dstMac: FORGED.unknownMac, dstIp: FORGED.unknownIp };
  return [
    { id: 'forged-mac', from: 'guest-a', target: 'peer', addrs: { srcMac: FORGED.mac, srcIp: a.ip, ...toPeer }, replyFrom: 'peer' },
    { id: 'forged-ip', from: 'guest-a', target: 'peer', addrs: { srcMac: a.mac, srcIp: FORGED.ip, ...toPeer }, replyFrom: 'peer' },
    { id: 'to-guest', from: 'guest-a', target: 'guest-b', addrs: { srcMac: a.mac, srcIp: a.ip, ...toB }, replyFrom: 'guest-b' },
    { id: 'guest-bcast', from: 'guest-a', target: 'guest-b', addrs: { srcMac: a.mac, srcIp: a.ip, dstMac: BROADCAST_MAC, dstIp: BROADCAST_IP }, replyFrom: null },
    { id: 'snoop-guest', from: 'peer', target: 'guest-a', addrs: { ...fromPeer, ...toB }, replyFrom: null },
    { id: 'snoop-unknown', from: 'peer', target: 'guest-a', addrs: { ...fromPeer, ...toUnknown }, replyFrom: null },
    { id: 'promisc-guest', from: 'peer', target: 'guest-a', addrs: { ...fromPeer, ...toB }, replyFrom: null },
    { id: 'promisc-unknown', from: 'peer', target: 'guest-a', addrs: { ...fromPeer, ...toUnknown }, replyFrom: null },
    { id: 'stolen-mac', from: 'guest-a', target: 'peer', addrs: { srcMac: b.mac, srcIp: a.ip, ...toPeer }, replyFrom: 'peer' },
  ];
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
  for (const spec of caseSpecs(p)) {
    if (spec.id === 'promisc-guest') await setPromisc(t.guestNs.path, t.guestDevices[0]!);
    // A learning switch must know both guests and the peer before every case (stolen-mac moves B's MAC to A's port).
    if (!(await p.announce(opts))) throw new Error(`${t.label}: the peer never saw both guests' broadcasts: the testbed does not forward`);
    const sent = await p.exchange(spec.from, spec.target, spec.addrs, opts);
    let repliesSent: number | null = null;
    let repliesBack: number | null = null;
    if (REPLY_CASES.includes(spec.id) && spec.replyFrom) {
      repliesSent = 0;
      repliesBack = 0;
      if (sent.reached > 0) {
        // Addressed to the source the frame claimed, as the target saw it.
        const seen = sent.seen ?? spec.addrs;
        const reply: FrameAddrs = { srcMac: seen.dstMac, srcIp: seen.dstIp, dstMac: seen.srcMac, dstIp: seen.srcIp };
        repliesSent = opts.attempts;
        // Guest A keeps sending as the address it claims (an attacker would), so a switch that learns late still
        // gets its chance; each reply follows one such frame by PACE_MS.
        const again = Buffer.concat([MAGIC, randomBytes(6)]);
        const keepClaiming = spec.from === 'guest-a' ? () => p.send('guest-a', spec.addrs, again) : undefined;
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
      frame: spec.addrs,
    });
  }
  return CASES.map((id) => results.get(id)!);
}

/** The notes stored with the matrix: how each cell was measured. */
function notes(ovsDatapath: 'system' | 'netdev' | null): string[] {
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
  ];
  if (ovsDatapath) {
    out.push(`tap+ovs runs the default flow table (a single NORMAL action: a learning switch) on OVS's ${ovsDatapath === 'netdev' ? 'userspace netdev datapath (no openvswitch kernel module here), labelled ovs-netdev' : 'kernel datapath, labelled ovs-system'}; Neutron adds its own anti-spoofing flows on top, which this row does not have.`);
  }
  return out;
}

/** Attachments probed one after another in each lane; `tap+ovs` alone, its daemons take seconds to start. */
const LANES: Attachment[][] = [['tap+ovs'], ['macvtap-bridge', 'macvtap-vepa'], ['macvtap-private', 'tap+linuxbridge']];

/** Builds, probes and tears down one attachment's testbed. */
async function probeAttachment(id: Attachment, ovs: OvsAvailability, opts: SecurityOptions, hooks: SecurityHooks, namespaces: string[]): Promise<AttachmentRow> {
  const t1 = performance.now();
  const label = topologyLabel(id, ovs);
  if (id === 'tap+ovs' && !ovs.available) {
    return { attachment: id, label, guestA: null, guestB: null, unavailable: ovs.reason, cases: [], durationS: 0 };
  }
  const t = await buildTopology(id, ovs, { secondGuest: true });
  let row: AttachmentRow;
  try {
    namespaces.push(t.guestNs.name, t.peerNs.name);
    await hooks.onBuilt?.(t);
    const wire = await PacketSocket.open(t.peerWire, t.peerNs.path);
    try {
      const cases = await probeTopology(t, wire, opts);
      const a = tapOf(t.guest, 'guest A');
      const b = tapOf(t.guest2, 'guest B');
      row = {
        attachment: id,
        label,
        guestA: { mac: a.mac, ip: a.ip, device: t.guestDevices[0]! },
        guestB: { mac: b.mac, ip: b.ip, device: t.guestDevices[1]! },
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
 * a time, which leaves a pool thread for the lanes' netlink calls. `tap+ovs` without Open vSwitch installed is an `n/a` row; any other failure throws (after both lanes ended).
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
    notes: notes(ranOvs ? ovs.datapath : null),
    rows,
  };
}

/** The addresses the probe uses, for the report and tests. */
export const PROBE_ADDRESSES = { ...ADDR, ...FORGED } as const;
