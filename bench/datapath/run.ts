/**
 * The datapath measurement loop: builds every topology once, then per repetition runs every (placement, poll, test)
 * on every topology in turn — topologies interleaved innermost (A B C … A B C), so slow drift of the VM lands on all of
 * them alike and each repetition gives one pair per topology with the baseline. Tears everything down at the end,
 * also on failure (and on SIGINT/SIGTERM through bench/testbed/cleanup.ts).
 */
import { release as osRelease } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { startGuest, startPeer, lostRoundTrips, type Endpoint, type EndpointStats, type GuestConfig, type PeerConfig } from '../testbed/endpoints.js';
import { cpuDelta, ovsCpuSeconds, readCpuTimes } from './cpu.js';
import { detectOvs, type OvsAvailability } from '../testbed/ovs.js';
import type { Progress } from '../report/progress.js';
import type { DatapathOptions, DatapathRow } from './schema.js';
import { ADDR, buildTopology, topologyLabel, TOPOLOGY_IDS, type Topology, type TopologyId, type UnavailableTopology } from '../testbed/topology.js';
import { BASE_TOPOLOGY_IDS, topologyParts } from '../testbed/topology-ids.js';

/** Ethernet (14) + IPv4 (20) + UDP (8): bytes a frame carries besides the UDP payload (no FCS, no vnet header). */
export const FRAME_OVERHEAD = 42;
/** UDP payload of a 64-byte Ethernet frame (64 − 4 FCS − 42). */
const PAYLOAD_64 = 18;
/** UDP payload of a 1500-byte IP packet. */
const PAYLOAD_1500 = 1472;
/** GSO super-frame: 44 segments of 1472 B (64 768 B of payload, under the 64 KB IP limit). */
const GSO_SEGMENT = 1472;
const GSO_SEGMENTS = 44;
/**
 * Ping-pong replies slower than this count as lost. Generous on purpose: with two spinning endpoints on a 2-vCPU VM
 * the hypervisor and the kernel's own threads stall a round trip now and then by tens of ms, and such a stall belongs
 * in the histogram (its max and p99.9), not in the loss count.
 */
export const RTT_TIMEOUT_MS = 200;
/** Time a receiver keeps reading after the sender stopped, for packets still in queues. */
const DRAIN_MS = 30;

/** Defaults: every topology, placement, poll mode and test; 6 repetitions, the fewest whose [min, max] covers the median with ≥ 95%. */
export const DATAPATH_DEFAULTS: DatapathOptions = {
  quick: false,
  reps: 6,
  topologies: [...TOPOLOGY_IDS],
  placements: ['same-cpu', 'cross-cpu'],
  polls: ['block', 'busy'],
  tests: ['rtt-64', 'rtt-1400', 'rtt-64-raw', 'g2p-64', 'p2g-64', 'g2p-1500', 'p2g-1500', 'g2p-gso'],
  baseline: 'tap+linuxbridge',
  latencyMs: 250,
  throughputMs: 250,
  ratePps: 0,
  warmup: true,
};

/**
 * `--quick`: every unfiltered topology and the three secured ones with 100 rules, every test, blocking only, two short
 * repetitions (≤ 60 s).
 */
export const DATAPATH_QUICK: DatapathOptions = {
  ...DATAPATH_DEFAULTS,
  quick: true,
  topologies: [...BASE_TOPOLOGY_IDS, 'macvtap-bridge+nft100', 'tap+linuxbridge+nft100', 'tap+ovs+flows100'],
  reps: 2,
  polls: ['block'],
  latencyMs: 100,
  throughputMs: 100,
};

/** One measurement to make. */
export interface Job {
  topology: Topology;
  placement: DatapathRow['placement'];
  poll: DatapathRow['poll'];
  test: DatapathRow['test'];
  rep: number;
}

/** What {@link runDatapath} returns. */
export interface DatapathRun {
  rows: DatapathRow[];
  unavailable: UnavailableTopology[];
  skipped: string[];
  offloads: Record<string, string[]>;
  /** Per secured topology's label: the policy it carries and how it was installed. */
  filters: Record<string, string>;
  namespaces: string[];
  ovs: OvsAvailability;
  startedAt: string;
  durationS: number;
}

/** vCPUs for the guest side and the peer endpoint. */
export function placementCpus(placement: DatapathRow['placement'], vcpus: number): { guest: number; peer: number } {
  // Same-cpu on the last vCPU, cross-cpu on the last two: CPU 0 takes most interrupts and the harness's own thread.
  const last = Math.max(0, vcpus - 1);
  return placement === 'same-cpu' ? { guest: last, peer: last } : { guest: Math.max(0, last - 1), peer: last };
}

/**
 * Whether taps take UDP GSO super-frames (`VIRTIO_NET_HDR_GSO_UDP_L4`, tap USO): Linux 6.2 and later. Earlier kernels
 * refuse the write with EINVAL (seen on Debian's 6.1).
 */
export function tapUdpGsoSupported(release: string = osRelease()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 6 || (major === 6 && minor >= 2);
}

/** Whether a (topology, test) pair makes sense; `rtt-64-raw` only on tap topologies, GSO only through a tap. */
export function testApplies(topology: TopologyId, test: DatapathRow['test']): boolean {
  if (test === 'g2p-gso' && !tapUdpGsoSupported()) return false;
  if (topologyParts(topology).base === 'veth-direct') return test !== 'g2p-gso' && test !== 'rtt-64-raw';
  return true;
}

const zeroStats = (): EndpointStats => ({
  rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, ignored: 0, txErrors: 0, arpReplies: 0,
  cpuUserUs: 0, cpuSysUs: 0, elapsedNs: 0, latency: null,
});

function endpointRecord(s: EndpointStats): DatapathRow['guest'] {
  return {
    rxPackets: s.rxPackets, rxBytes: s.rxBytes, txPackets: s.txPackets, txBytes: s.txBytes, ignored: s.ignored,
    txErrors: s.txErrors, arpReplies: s.arpReplies, cpuUserUs: s.cpuUserUs, cpuSysUs: s.cpuSysUs, elapsedNs: s.elapsedNs,
  };
}

/** The guest side as an endpoint: the native guest loop on the tap, or (veth-direct) a socket endpoint in the guest ns. */
function startGuestSide(
  t: Topology,
  mode: 'echo' | 'raw-echo' | 'sink' | 'generate',
  cpu: number,
  poll: DatapathRow['poll'],
  durationMs: number,
  gen?: { payloadSize: number; ratePps: number; gsoSize?: number },
): { ep: Endpoint; mode: string } {
  if (t.guest.kind === 'socket') {
    const cfg: PeerConfig = {
      netns: t.guest.netns, bindIp: t.guest.ip, bindPort: ADDR.guestPort, cpu, poll, durationMs,
      mode: mode === 'raw-echo' ? 'echo' : mode,
    };
    // A ping-pong server takes one datagram at a time (as sockperf's does); batching only pays for streams.
    if (cfg.mode === 'echo') cfg.batch = 1;
    if (mode === 'generate') {
      cfg.target = { ip: t.peer.ip, port: ADDR.peerPort };
      cfg.payloadSize = gen!.payloadSize;
      cfg.ratePps = gen!.ratePps;
    }
    return { ep: startPeer(cfg), mode: `socket-${cfg.mode}` };
  }
  const cfg: GuestConfig = {
    fd: t.guest.fd, vnetHdrSize: t.guest.vnetHdrSize, mac: t.guest.mac, ip: t.guest.ip, mode, cpu, poll, durationMs,
  };
  if (mode === 'generate') {
    cfg.generate = {
      dstMac: t.peer.mac, dstIp: t.peer.ip, srcPort: ADDR.guestPort, dstPort: ADDR.peerPort,
      payloadSize: gen!.payloadSize, ratePps: gen!.ratePps,
    };
    if (gen!.gsoSize !== undefined) cfg.generate.gsoSize = gen!.gsoSize;
  }
  return { ep: startGuest(cfg), mode };
}

/** Stops an endpoint that may already have ended; never throws (its stats are then zero, and the row says so). */
async function settle(ep: Endpoint): Promise<EndpointStats> {
  return ep.stop().catch(() => zeroStats());
}

/** Runs one measurement and returns its row. Throws if an endpoint fails to start or run. */
export async function measure(job: Job, opts: DatapathOptions, vcpus: number): Promise<DatapathRow> {
  const { topology: t, placement, poll, test, rep } = job;
  const cpus = placementCpus(placement, vcpus);
  const ovs0 = t.ovs ? ovsCpuSeconds(t.ovs) : null;
  const cpu0 = readCpuTimes();
  let guest: EndpointStats;
  let peer: EndpointStats;
  let guestMode: string;
  let sent: number;
  let received: number;
  let lost: number;
  let seconds: number;
  let frameBytes: number | null = null;
  let latency: EndpointStats['latency'] = null;

  if (test.startsWith('rtt-')) {
    const payloadSize = test === 'rtt-1400' ? 1400 : 64;
    // The echo side outlives the ping-pong; it is stopped once the ping-pong is done.
    const g = startGuestSide(t, test === 'rtt-64-raw' ? 'raw-echo' : 'echo', cpus.guest, poll, opts.latencyMs + 5_000);
    guestMode = g.mode;
    try {
      await g.ep.ready;
      const p = startPeer({
        netns: t.peerNs.path, bindIp: t.peer.ip, bindPort: ADDR.peerPort, mode: 'pingpong',
        target: { ip: t.guest.ip, port: ADDR.guestPort }, payloadSize, count: 100_000_000, warmup: 50,
        timeoutMs: RTT_TIMEOUT_MS, cpu: cpus.peer, poll, durationMs: opts.latencyMs,
      });
      peer = await p.done;
    } finally {
      guest = await settle(g.ep);
    }
    latency = peer.latency;
    received = latency?.count ?? 0;
    // The peer counts a round trip still in flight when its time is up as lost (sent − received). With one datagram
    // in flight at a time there is almost always exactly one such round trip: it is unfinished, not lost.
    lost = Math.max(0, lostRoundTrips(peer) - 1);
    sent = received + lost;
    seconds = peer.elapsedNs / 1e9;
  } else {
    const toPeer = test.startsWith('g2p');
    const gso = test === 'g2p-gso';
    const payloadSize = gso ? GSO_SEGMENT * GSO_SEGMENTS : test.endsWith('-64') ? PAYLOAD_64 : PAYLOAD_1500;
    const slack = opts.throughputMs + 5_000;
    if (toPeer) {
      const sink = startPeer({
        netns: t.peerNs.path, bindIp: t.peer.ip, bindPort: ADDR.peerPort, mode: 'sink', cpu: cpus.peer, poll, durationMs: slack,
      });
      try {
        await sink.ready;
        // --rate counts packets on the wire: GSO super-frames are sent at 1/44 of it (each becomes 44 datagrams).
        const rate = gso && opts.ratePps > 0 ? Math.max(1, Math.round(opts.ratePps / GSO_SEGMENTS)) : opts.ratePps;
        const g = startGuestSide(t, 'generate', cpus.guest, poll, opts.throughputMs, gso ? { payloadSize, ratePps: rate, gsoSize: GSO_SEGMENT } : { payloadSize, ratePps: rate });
        guestMode = g.mode;
        try {
          await g.ep.ready;
          guest = await g.ep.done;
        } catch (e) {
          await settle(g.ep);
          throw e;
        }
        await sleep(DRAIN_MS);
      } finally {
        peer = await settle(sink);
      }
      // The guest's tx counter includes its ARP replies; only generated frames were sent to the sink.
      const frames = guest.txPackets - guest.arpReplies;
      sent = gso ? frames * GSO_SEGMENTS : frames;
      received = peer.rxPackets;
      lost = Math.max(0, sent - received) + guest.txErrors;
      seconds = guest.elapsedNs / 1e9;
      // The peer's socket counts UDP payload bytes; frames add the headers.
      frameBytes = peer.rxBytes + received * FRAME_OVERHEAD;
    } else {
      const g = startGuestSide(t, 'sink', cpus.guest, poll, slack);
      guestMode = g.mode;
      try {
        await g.ep.ready;
        const p = startPeer({
          netns: t.peerNs.path, bindIp: t.peer.ip, bindPort: ADDR.peerPort, mode: 'generate',
          target: { ip: t.guest.ip, port: ADDR.guestPort }, payloadSize, ratePps: opts.ratePps, cpu: cpus.peer, poll,
          durationMs: opts.throughputMs,
        });
        peer = await p.done;
        await sleep(DRAIN_MS);
      } finally {
        guest = await settle(g.ep);
      }
      sent = peer.txPackets;
      received = guest.rxPackets;
      lost = Math.max(0, sent - received) + peer.txErrors;
      seconds = peer.elapsedNs / 1e9;
      frameBytes = received * (payloadSize + FRAME_OVERHEAD);
    }
  }

  const cpu = cpuDelta(cpu0, readCpuTimes());
  const ovs1 = t.ovs ? ovsCpuSeconds(t.ovs) : null;
  const isRtt = latency !== null || test.startsWith('rtt-');
  const pps = seconds > 0 ? received / seconds : 0;
  const gbps = !isRtt && frameBytes !== null && seconds > 0 ? (frameBytes * 8) / seconds / 1e9 : null;
  // Ping-pong: each round trip is two packets, one each way.
  const packets = isRtt ? 2 * received : received;
  const gbits = gbps !== null ? gbps * seconds : 0;
  return {
    topology: t.id,
    label: t.label,
    placement,
    poll,
    test,
    rep,
    cpus,
    guestMode,
    seconds,
    sent,
    received,
    lost,
    gbps,
    pps,
    latency: latency ? { ...latency, buckets: latency.buckets.map(([a, b]: [number, number]) => [a, b] as [number, number]) } : null,
    guest: endpointRecord(guest),
    peer: endpointRecord(peer),
    cpu: {
      user: cpu.user,
      system: cpu.system,
      softirq: cpu.softirq,
      busy: cpu.busy,
      vswitchd: ovs0 && ovs1 ? ovs1.vswitchd - ovs0.vswitchd : null,
      ovsdb: ovs0 && ovs1 ? ovs1.ovsdb - ovs0.ovsdb : null,
    },
    cpuUsPerPacket: packets > 0 ? (cpu.busy * 1e6) / packets : null,
    cpuSPerGbit: gbits > 0 ? cpu.busy / gbits : null,
  };
}

/** Every job of one repetition, topologies innermost (interleaved). Combinations that measure nothing are left out. */
export function jobsFor(topologies: Topology[], opts: DatapathOptions, rep: number, vcpus: number): Job[] {
  const jobs: Job[] = [];
  for (const placement of opts.placements) {
    if (placement === 'cross-cpu' && vcpus < 2) continue;
    for (const poll of opts.polls) {
      if (placement === 'same-cpu' && poll === 'busy') continue;
      for (const test of opts.tests) {
        for (const topology of topologies) {
          if (testApplies(topology.id, test)) jobs.push({ topology, placement, poll, test, rep });
        }
      }
    }
  }
  return jobs;
}

/** Combinations {@link jobsFor} leaves out, with the reason, for the report. */
export function skippedCombinations(opts: DatapathOptions, vcpus: number): string[] {
  const out: string[] = [];
  if (opts.placements.includes('cross-cpu') && vcpus < 2) out.push('cross-cpu: this machine has one vCPU');
  if (opts.placements.includes('same-cpu') && opts.polls.includes('busy')) {
    out.push('same-cpu × busy: two spinning endpoints on one vCPU only hand over at scheduler ticks; that measures the scheduler, not the datapath');
  }
  if (opts.tests.includes('g2p-gso') && !tapUdpGsoSupported()) {
    out.push(`g2p-gso: this kernel (${osRelease()}) has no UDP GSO on taps (VIRTIO_NET_HDR_GSO_UDP_L4 needs Linux 6.2+)`);
  } else if (opts.topologies.includes('veth-direct') && opts.tests.includes('g2p-gso')) {
    out.push('veth-direct × g2p-gso: no tap to take vnet-header GSO frames (its socket endpoint sends 1472-byte datagrams: see g2p-1500)');
  }
  if (opts.topologies.includes('veth-direct') && opts.tests.includes('rtt-64-raw')) out.push('veth-direct × rtt-64-raw: no tap');
  return out;
}

/**
 * Why a secured topology cannot be built here when the reason is the host's, not the harness's: no libnftables, no
 * `nft` (the tap's table is reloaded with it), a kernel without the netdev egress hook. `null` for any other failure.
 */
export function filterUnavailable(e: unknown): string | null {
  const err = e as { code?: string; syscall?: string; message?: string };
  if (err.code === 'ENOENT' && err.syscall === 'dlopen') return 'libnftables not installed (apt-get install libnftables1): port security cannot be applied';
  if (err.code === 'EOPNOTSUPP') return `this kernel cannot host port security: ${err.message ?? ''}`;
  // `ip netns exec NS nft …` without nft installed: "exec of "nft" failed: No such file or directory".
  if (/exec of "nft" failed/.test(err.message ?? '')) {
    return 'nft not installed (apt-get install nftables): the tap\'s table is reloaded with it';
  }
  return null;
}

/**
 * Runs the whole datapath benchmark. Topologies that cannot be built (OVS missing) are reported as unavailable and the
 * rest runs; any other failure tears everything down and throws.
 */
export async function runDatapath(opts: DatapathOptions, vcpus: number, progress: Progress): Promise<DatapathRun> {
  const startedAt = new Date();
  const t0 = performance.now();
  const ovs = detectOvs();
  const topologies: Topology[] = [];
  const unavailable: UnavailableTopology[] = [];
  const rows: DatapathRow[] = [];
  const namespaces: string[] = [];
  try {
    progress.phase('build testbed', opts.topologies.length);
    for (const id of opts.topologies) {
      try {
        const t = await buildTopology(id, ovs);
        topologies.push(t);
        namespaces.push(t.guestNs.name, t.peerNs.name);
      } catch (e) {
        // Only a missing OVS is tolerated: every other topology is built from kernel parts this package relies on.
        const missing = topologyParts(id).filter ? filterUnavailable(e) : null;
        if (topologyParts(id).base === 'tap+ovs' && !ovs.available) {
          unavailable.push({ id, label: topologyLabel(id, ovs), reason: ovs.reason });
        } else if (missing) {
          unavailable.push({ id, label: topologyLabel(id, ovs), reason: missing });
        } else {
          throw e;
        }
      }
      progress.step(`built ${id}`);
    }
    if (opts.warmup) {
      // Untimed: ARP/neighbour entries, bridge FDB learning, OVS flow setup, page faults of the endpoint threads.
      const jobs = jobsFor(topologies, { ...opts, latencyMs: 30, throughputMs: 30 }, 0, vcpus);
      progress.phase('warm-up', jobs.length);
      for (const j of jobs) {
        await measure(j, { ...opts, latencyMs: 30, throughputMs: 30 }, vcpus);
        progress.step(`warm-up ${j.topology.label} ${j.test}`);
      }
    }
    const perRep = jobsFor(topologies, opts, 0, vcpus).length;
    progress.phase('measure', perRep * opts.reps);
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const j of jobsFor(topologies, opts, rep, vcpus)) {
        rows.push(await measure(j, opts, vcpus));
        progress.step(`rep ${rep + 1}/${opts.reps} ${j.placement} ${j.poll} ${j.test} ${j.topology.label}`);
      }
    }
  } finally {
    progress.end();
    for (const t of topologies) await t.destroy().catch(() => undefined);
  }
  const offloads: Record<string, string[]> = {};
  for (const t of topologies) offloads[t.label] = t.offloads;
  const filters: Record<string, string> = {};
  for (const t of topologies) if (t.filter) filters[t.label] = t.filter.description;
  return {
    rows,
    unavailable,
    skipped: skippedCombinations(opts, vcpus),
    offloads,
    filters,
    namespaces,
    ovs,
    startedAt: startedAt.toISOString(),
    durationS: (performance.now() - t0) / 1000,
  };
}
