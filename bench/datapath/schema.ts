/**
 * The JSON the datapath benchmark writes with `--json FILE`: schema `macvtap-bench-datapath/2`. Every raw repetition
 * is kept in `rows` (with its latency histogram, so repetitions can be merged again by buckets); `summary` and
 * `targets` are derived from them and can be recomputed. Tests validate real runs against {@link DatapathReportSchema}.
 */
import { z } from 'zod';
import { HostSchema, StatsSchema, TargetSchema } from '../report/schema.js';
import { TOPOLOGY_IDS } from '../testbed/topology-ids.js';
import { TcgGuestResultSchema } from '../guest/schema.js';
import { SecurityMatrixSchema } from '../security/schema.js';

/**
 * Schema id written into every report; bump the number on any incompatible change. `/2` added the secured topologies
 * (topology ids `…+nftN`, `…+flowsN`), `filters` and `claims`; a `/1` report still reads (those are optional).
 */
export const DATAPATH_SCHEMA_ID = 'macvtap-bench-datapath/2';
/** Ids of reports this reader takes: the current one and the ones before it. */
export const DATAPATH_SCHEMA_IDS = ['macvtap-bench-datapath/1', DATAPATH_SCHEMA_ID] as const;

/** Where the two endpoints run: both pinned to one vCPU, or each on its own. */
export const PLACEMENTS = ['same-cpu', 'cross-cpu'] as const;
/** How the endpoints wait: `poll()` + read (an idle virtio backend) or spinning on a non-blocking fd (poll mode). */
export const POLLS = ['block', 'busy'] as const;

/**
 * Measurements. `rtt-*`: closed-loop UDP ping-pong with that payload; `rtt-64-raw`: the same against the minimal C
 * read→swap→write loop instead of the guest endpoint (the ≤10% target); `g2p-*`/`p2g-*`: guest→peer and peer→guest
 * streams at full rate, `64` = 64-byte Ethernet frames (18 B UDP payload), `1500` = 1500-byte IP packets (1472 B
 * payload); `g2p-gso`: guest→peer 64 KB UDP GSO super-frames (vnet header, 1472 B segments).
 */
export const TESTS = ['rtt-64', 'rtt-1400', 'rtt-64-raw', 'g2p-64', 'p2g-64', 'g2p-1500', 'p2g-1500', 'g2p-gso'] as const;

const num = z.number().finite();
const count = z.number().int().nonnegative();

/** Latency of one repetition, ns, from the native histogram (buckets kept for merging). */
export const LatencySchema = z.object({
  count: count,
  minNs: num,
  maxNs: num,
  meanNs: num,
  p50Ns: num,
  p90Ns: num,
  p99Ns: num,
  p999Ns: num,
  buckets: z.array(z.tuple([num, count])),
});

/** Counters of one endpoint for one measurement. */
export const EndpointSchema = z.object({
  rxPackets: count,
  rxBytes: count,
  txPackets: count,
  txBytes: count,
  ignored: count,
  txErrors: count,
  arpReplies: count,
  cpuUserUs: num.nonnegative(),
  cpuSysUs: num.nonnegative(),
  elapsedNs: num.nonnegative(),
});

/** One measurement: one test of one topology, placement and poll mode, in one repetition. */
export const DatapathRowSchema = z.object({
  topology: z.enum(TOPOLOGY_IDS),
  /** The id, or for OVS the datapath really used (`ovs-system` / `ovs-netdev`). */
  label: z.string(),
  placement: z.enum(PLACEMENTS),
  poll: z.enum(POLLS),
  test: z.enum(TESTS),
  rep: count,
  /** vCPUs the guest side and the peer endpoint were pinned to. */
  cpus: z.object({ guest: count, peer: count }),
  /** What drove the guest side: the native guest endpoint in a mode, or (veth-direct) a socket endpoint. */
  guestMode: z.string(),
  /** Wall time of the active side's loop, s. */
  seconds: num.nonnegative(),
  /** Packets the sending side put on the wire (GSO: segments the super-frames carry). */
  sent: count,
  /** Packets the receiving side got (ping-pong: replies). */
  received: count,
  /** `sent − received` (ping-pong: round trips without a reply), plus send errors; ≥ 0. */
  lost: count,
  /** Frame bytes delivered per second ×8 / 1e9 (Ethernet header + IP + UDP + payload, no FCS); null for ping-pong. */
  gbps: num.nonnegative().nullable(),
  /** Packets delivered per second; ping-pong: round trips per second. */
  pps: num.nonnegative(),
  latency: LatencySchema.nullable(),
  guest: EndpointSchema,
  peer: EndpointSchema,
  /** Whole-machine CPU seconds during the measurement from /proc/stat, and OVS daemons' from /proc/PID/stat. */
  cpu: z.object({
    user: num,
    system: num,
    softirq: num,
    busy: num,
    vswitchd: num.nullable(),
    ovsdb: num.nullable(),
  }),
  /** Busy CPU µs per delivered packet (ping-pong: per packet in either direction). */
  cpuUsPerPacket: num.nonnegative().nullable(),
  /** Busy CPU seconds per Gbit delivered (netperf's service demand); null for ping-pong. */
  cpuSPerGbit: num.nonnegative().nullable(),
});
/** A raw row. */
export type DatapathRow = z.infer<typeof DatapathRowSchema>;

/** Repetitions of one (topology, placement, poll, test), summarised. */
export const DatapathSummarySchema = z.object({
  topology: z.enum(TOPOLOGY_IDS),
  label: z.string(),
  placement: z.enum(PLACEMENTS),
  poll: z.enum(POLLS),
  test: z.enum(TESTS),
  /** Unit of `value`: `us` (RTT p50), `Mpps`, `Gbit/s`. */
  unit: z.enum(['us', 'Mpps', 'Gbit/s']),
  /** The main number per repetition (RTT p50 µs; Mpps for 64-byte streams; Gbit/s otherwise). */
  value: StatsSchema,
  /** Ping-pong: percentiles of all repetitions' histograms merged (µs). */
  latencyUs: z.object({ count: count, min: num, mean: num, p50: num, p90: num, p99: num, p999: num, max: num }).nullable(),
  sent: count,
  lost: count,
  cpuUsPerPacket: StatsSchema.nullable(),
  cpuSPerGbit: StatsSchema.nullable(),
  /** Median OVS daemon CPU per repetition, s. */
  vswitchdCpuS: num.nullable(),
  /** `value` ÷ the baseline topology's, per repetition pair; null for the baseline itself or when it is missing. */
  vsBaseline: StatsSchema.nullable(),
  /** CPU per packet ÷ the baseline's, per repetition pair. */
  cpuVsBaseline: StatsSchema.nullable(),
});
/** A summary row. */
export type DatapathSummary = z.infer<typeof DatapathSummarySchema>;

/**
 * One line of the claims header: a blueprint claim, the measured ratio with its interval, and what it was measured
 * against (which topologies, test, placement and poll).
 */
export const ClaimSchema = z.object({
  /** `latency`, `throughput`, `cpu`, `security`. */
  claim: z.enum(['latency', 'throughput', 'cpu', 'security']),
  /** The line as printed. */
  text: z.string(),
  /** The ratio's median and interval (per repetition pair); null when the run lacks one of the two topologies. */
  ratio: StatsSchema.nullable(),
  /** Numerator and denominator topology labels. */
  of: z.string(),
  against: z.string(),
  /** What was divided: test, placement and poll. */
  measure: z.string(),
});
/** A claims line. */
export type Claim = z.infer<typeof ClaimSchema>;

/** The whole report. */
export const DatapathReportSchema = z.object({
  schema: z.enum(DATAPATH_SCHEMA_IDS),
  host: HostSchema.extend({ ovs: z.object({ version: z.string(), datapath: z.enum(['system', 'netdev']) }).nullable() }),
  command: z.string(),
  argv: z.array(z.string()),
  options: z.object({
    quick: z.boolean(),
    reps: z.number().int().positive(),
    topologies: z.array(z.enum(TOPOLOGY_IDS)),
    placements: z.array(z.enum(PLACEMENTS)),
    polls: z.array(z.enum(POLLS)),
    tests: z.array(z.enum(TESTS)),
    baseline: z.enum(TOPOLOGY_IDS),
    latencyMs: z.number().int().positive(),
    throughputMs: z.number().int().positive(),
    /** Stream send rate, packets/s; 0 = as fast as the sender can (the default). */
    ratePps: z.number().int().nonnegative(),
    warmup: z.boolean(),
  }),
  namespaces: z.array(z.string()),
  startedAt: z.string(),
  durationS: num.nonnegative(),
  /** Topologies that could not be built, and why (e.g. OVS not installed, with the command that installs it). */
  unavailable: z.array(z.object({ topology: z.enum(TOPOLOGY_IDS), label: z.string(), reason: z.string() })),
  /** Combinations not measured, and why (e.g. busy polling with both ends on one vCPU). */
  skipped: z.array(z.string()),
  /** Per topology: offload changes made (ethtool -K equivalents). */
  offloads: z.record(z.string(), z.array(z.string())),
  /** Per secured topology (label): the port policy it carries and how it was installed; absent in `/1` reports. */
  filters: z.record(z.string(), z.string()).optional(),
  /** One line per blueprint claim, printed first (claims.ts); absent in `/1` reports. */
  claims: z.array(ClaimSchema).optional(),
  notes: z.array(z.string()),
  rows: z.array(DatapathRowSchema),
  summary: z.array(DatapathSummarySchema),
  targets: z.array(TargetSchema),
  /** The anti-spoofing matrix of the same run (bench/security/), unless `--no-security`; absent in older reports. */
  security: SecurityMatrixSchema.optional(),
  /**
   * The "TCG guest" row of the same run (bench/guest/): a real guest under QEMU TCG on macvtap and on tap+bridge,
   * unless `--no-guest` (and by default not with `--quick`); absent in older reports.
   */
  tcgGuest: TcgGuestResultSchema.optional(),
});
/** The report type. */
export type DatapathReport = z.infer<typeof DatapathReportSchema>;
/** Options as recorded in the report. */
export type DatapathOptions = DatapathReport['options'];
