/**
 * `macvtap bench` (the default benchmark): the datapath harness — options, host facts, the report object (validated
 * against its own schema before it is written), progress on stderr with cli-progress, the table on stdout, `--json`
 * and `--html` files.
 */
import { cpus } from 'node:os';
import { BenchUsageError, intOption, listOption, outputUsage, parseBenchArgs, runSubcommand, type OutputArgs } from '../report/options.js';
import type { Progress } from '../report/progress.js';
import { hostFacts } from '../report/schema.js';
import { OVS_INSTALL_HINT } from '../testbed/ovs.js';
import { DATAPATH_DEFAULTS, DATAPATH_QUICK, RTT_TIMEOUT_MS, runDatapath, type DatapathRun } from './run.js';
import { formatDatapathReport } from './report.js';
import { DATAPATH_SCHEMA_ID, DatapathReportSchema, PLACEMENTS, POLLS, TESTS, type DatapathOptions, type DatapathReport } from './schema.js';
import { checkDatapathTargets, summarizeDatapath } from './summary.js';
import { blueprintClaims } from './claims.js';
import { TOPOLOGY_IDS } from '../testbed/topology-ids.js';
import { measureTcgGuest } from '../guest/run.js';
import type { TcgGuestResult } from '../guest/schema.js';
import { qemuUnavailable } from '../testbed/qemu.js';
import { runSecurityProbe, SECURITY_DEFAULTS } from '../security/run.js';
import { ATTACHMENTS, isPortsec, PORTSEC_BASE, type Attachment, type SecurityMatrix } from '../security/schema.js';

/** Usage text of the datapath benchmark (part of `macvtap bench --help`). */
export const DATAPATH_USAGE = `Usage: macvtap bench [options]            datapath benchmark (the default)
       macvtap bench control [options]    control-plane benchmark ('macvtap bench control --help')
       macvtap bench guest [options]      "TCG guest": a real QEMU guest's boot-to-first-ping and ping RTT,
                                          macvtap vs tap+Linux bridge ('macvtap bench guest --help')
       macvtap bench security [options]   anti-spoofing probe: forged MAC/IPv4/IPv6, ARP and ND, guest↔guest,
                                          snooping per attachment, with and without port security
                                          ('macvtap bench security --help')
       macvtap bench --compare a.json b.json

Datapath: a native guest endpoint on a tap fd and a native UDP peer in another network namespace, joined by
${TOPOLOGY_IDS.join(', ')};
latency (UDP ping-pong 64 B and 1400 B), throughput (64 B pps, 1500 B Gbit/s, GSO), loss and CPU, repetitions
interleaved, medians with 95% intervals and ratios to a baseline. Namespaces mvt-bench-<pid>-<n>, a private Open
vSwitch (its own ovsdb-server/ovs-vswitchd in a temporary directory), all removed afterwards. Needs root.

  --quick                  ${DATAPATH_QUICK.reps} short repetitions, blocking only (≤ 60 s)
  --reps N                 repetitions (default ${DATAPATH_DEFAULTS.reps})
  --topologies A,B,…       subset of ${TOPOLOGY_IDS.join(',')}
  --placement A,B          same-cpu and/or cross-cpu (default both)
  --poll A,B               block and/or busy (default both; quick: block)
  --tests A,B,…            subset of ${TESTS.join(',')}
  --baseline T             topology the ratios divide by (default ${DATAPATH_DEFAULTS.baseline})
  --latency-ms N           length of each ping-pong run (default ${DATAPATH_DEFAULTS.latencyMs}; quick ${DATAPATH_QUICK.latencyMs})
  --throughput-ms N        length of each stream (default ${DATAPATH_DEFAULTS.throughputMs}; quick ${DATAPATH_QUICK.throughputMs})
  --rate PPS               stream send rate, packets/s on the wire (GSO: segments); default 0 = as fast as possible
  --no-warmup              skip the untimed warm-up
  --no-security            skip the anti-spoofing probe (≈10 s) whose matrix the report embeds
  --guest / --no-guest     run / skip the "TCG guest" row: a real guest under QEMU TCG on macvtap and on tap+bridge
                           (≈1 min; default on, off with --quick; needs qemu-system-x86, the guest is built once)
  --guest-boots N          boots per path for that row (default 3)
${outputUsage(`${DATAPATH_SCHEMA_ID}, every repetition`)}

Open vSwitch: ${OVS_INSTALL_HINT}.
`;

/** Parsed command line of the datapath benchmark. */
export interface DatapathArgs {
  opts: DatapathOptions;
  output: OutputArgs;
  /** Run the anti-spoofing probe after the measurements and embed its matrix (`--no-security` turns it off). */
  security: boolean;
  /** Boot the TCG guest on both paths and embed its row (`--guest` / `--no-guest`; default: not with `--quick`). */
  guest: boolean;
  /** Boots per path for the TCG guest row. */
  guestBoots: number;
}

/** Parses the datapath benchmark's options (quick defaults first, explicit flags over them). */
export function parseDatapathArgs(args: string[]): DatapathArgs {
  const { values: v, output } = parseBenchArgs(args, {
    'quick': { type: 'boolean' },
    'reps': { type: 'string' },
    'topologies': { type: 'string' },
    'placement': { type: 'string' },
    'poll': { type: 'string' },
    'tests': { type: 'string' },
    'baseline': { type: 'string' },
    'latency-ms': { type: 'string' },
    'throughput-ms': { type: 'string' },
    'rate': { type: 'string' },
    'no-warmup': { type: 'boolean' },
    'no-security': { type: 'boolean' },
    'guest': { type: 'boolean' },
    'no-guest': { type: 'boolean' },
    'guest-boots': { type: 'string' },
  });
  const base = v.quick ? DATAPATH_QUICK : DATAPATH_DEFAULTS;
  const baseline = v.baseline ?? base.baseline;
  if (!(TOPOLOGY_IDS as readonly string[]).includes(baseline)) {
    throw new BenchUsageError(`--baseline takes one of ${TOPOLOGY_IDS.join(',')}, got ${JSON.stringify(baseline)}`);
  }
  const opts: DatapathOptions = {
    quick: v.quick === true,
    reps: intOption('reps', v.reps, base.reps, 1, 100),
    topologies: listOption('topologies', v.topologies, TOPOLOGY_IDS, base.topologies),
    placements: listOption('placement', v.placement, PLACEMENTS, base.placements),
    polls: listOption('poll', v.poll, POLLS, base.polls),
    tests: listOption('tests', v.tests, TESTS, base.tests),
    baseline: baseline as DatapathOptions['baseline'],
    latencyMs: intOption('latency-ms', v['latency-ms'], base.latencyMs, 10, 600_000),
    throughputMs: intOption('throughput-ms', v['throughput-ms'], base.throughputMs, 10, 600_000),
    ratePps: intOption('rate', v.rate, base.ratePps, 0, 100_000_000),
    warmup: v['no-warmup'] !== true,
  };
  if (v.guest && v['no-guest']) throw new BenchUsageError('--guest and --no-guest exclude each other');
  const guest = v.guest === true || (v['no-guest'] !== true && v.quick !== true);
  const guestBoots = intOption('guest-boots', v['guest-boots'], 3, 1, 50);
  return { opts, output, security: v['no-security'] !== true, guest, guestBoots };
}

/**
 * The attachments the embedded anti-spoofing probe covers: those among the run's topologies with their `+portsec`
 * rows, and macvtap-private and macvtap-private+portsec (which only the probe builds) whenever a macvtap topology is
 * in the run.
 */
export function securityAttachments(topologies: readonly string[]): Attachment[] {
  const anyMacvtap = topologies.some((t) => t.startsWith('macvtap-'));
  return ATTACHMENTS.filter((a) => {
    const base = isPortsec(a) ? PORTSEC_BASE[a] : a;
    return base === 'macvtap-private' ? anyMacvtap : topologies.includes(base);
  });
}

/** Host facts recorded in the report. */
function hostInfo(run: DatapathRun): DatapathReport['host'] {
  return {
    ...hostFacts(),
    ovs: run.ovs.available ? { version: run.ovs.version, datapath: run.ovs.datapath } : null,
  };
}

/** What each number includes, printed under the tables and kept in the JSON. */
function notes(run: DatapathRun, opts: DatapathOptions): string[] {
  const out = [
    'Guest endpoint: a native loop on its own thread over the tap fd (vnet header on, as QEMU opens it): answers ARP, ' +
      'echoes UDP, sinks or generates frames. Peer endpoint: a native UDP socket (recvmmsg/sendmmsg) in the peer namespace. ' +
      'veth-direct has no tap: its guest side is the same socket endpoint in the guest namespace.',
    'Placement: same-cpu pins both endpoints to the last vCPU; cross-cpu pins the guest side to the one before it. ' +
      'poll block = sleeping in the read (guest: read() on the tap fd; peer: recv on the socket), busy = spinning on a ' +
      'non-blocking fd (a poll-mode backend); ' +
      'both endpoints use the same mode. On these VMs a blocking wake-up across vCPUs costs hundreds of µs of round ' +
      'trip: the cross-cpu block rows measure the hypervisor, not the datapath — compare them with cross-cpu busy.',
    `Latency: closed-loop ping-pong, one datagram in flight; percentiles from the native log-linear histogram ` +
      `(≤1% relative error), repetitions merged bucket by bucket. Replies later than ${RTT_TIMEOUT_MS} ms count as lost; the one ` +
      "round trip in flight when a run's time is up does not.",
    'Throughput: the sender sends as fast as it can for the run length; the receiver keeps reading 30 ms longer. ' +
      'Rates are what the receiver got ÷ the sender\'s run time. Loss = sent − received (+ send errors), both ends\' ' +
      'counters. Gbit/s counts Ethernet frames without FCS (payload + 42 B). GSO: 64 768-byte super-frames cut into ' +
      '1472-byte UDP segments (VIRTIO_NET_HDR_GSO_UDP_L4); its veth-direct comparison is our own UDP stream (no TCP).',
    'CPU: busy time of the whole machine from /proc/stat (user, system, softirq) during each measurement, divided by ' +
      'delivered packets (ping-pong: 2 per round trip) and by Gbit (netperf\'s service demand). Busy-polling endpoints ' +
      'spin by design, so their CPU per packet includes the spinning. ovs-vswitchd CPU from /proc/PID/stat.',
    'Ratios (÷ base) are taken per repetition pair (the same repetition ran both back to back), then summarised: ' +
      'median and order-statistic 95% interval.',
  ];
  // Say plainly where a path carried nothing at all, rather than leave a bare zero in the table.
  const dead = new Set(run.rows.filter((r) => r.received === 0).map((r) => `${r.label} ${r.test}`));
  for (const d of dead) {
    out.push(`${d}: nothing arrived in at least one repetition` +
      (d.endsWith('g2p-gso') && d.startsWith('ovs-netdev')
        ? " (OVS's userspace datapath does not take the tap's 64 KB GSO super-frames; its TSO support is off by default and TCP-only)."
        : '.'));
  }
  if (Object.keys(run.filters).length) {
    out.push('Secured topologies (…+nftN, …+flowsN): every one carries the same port policy — the guest\'s MAC, its IPv4 ' +
      'and an IPv6 address, and N stateless security group rules (0 = anti-spoofing only) shaped like a real group (TCP/UDP ' +
      'port ranges, ICMP, protocol-only rules, IPv4 and IPv6, remote prefixes); the benchmark\'s own UDP is allowed by ' +
      'the last rule of each direction and by no other. macvtap-bridge+nftN: applyPortSecurity on the macvtap (netdev ' +
      'egress/ingress hooks). tap+linuxbridge+nftN@tap: the same library ruleset on the tap\'s own netdev hooks (from-guest ' +
      'on its ingress: a tap receives what the guest writes). ovs-…+flowsN: OpenFlow anti-spoofing and rule ' +
      'flows in the tables of Neutron\'s OVS firewall driver (0, 71, 72, 81, 82), stateless, accepted traffic to NORMAL. ' +
      'What each installed is listed under "Filters".');
  }
  if (run.ovs.available && run.ovs.datapath === 'netdev') {
    out.push('Open vSwitch runs its userspace netdev datapath here (no openvswitch kernel module on this kernel): the OVS ' +
      'docs call it experimental and far slower than the kernel datapath; the rows say ovs-netdev. Where the module ' +
      'exists the harness uses the kernel datapath (ovs-system).');
  }
  return out;
}

/** Builds the report from a finished run and validates it against its schema. */
export function buildDatapathReport(
  run: DatapathRun, opts: DatapathOptions, command: string, security?: SecurityMatrix, tcgGuest?: TcgGuestResult,
): DatapathReport {
  const summary = summarizeDatapath(run.rows, opts.baseline);
  const report: DatapathReport = {
    schema: DATAPATH_SCHEMA_ID,
    host: hostInfo(run),
    command,
    argv: [...process.argv],
    options: opts,
    namespaces: run.namespaces,
    startedAt: run.startedAt,
    durationS: run.durationS,
    unavailable: run.unavailable.map((u) => ({ topology: u.id, label: u.label, reason: u.reason })),
    skipped: run.skipped,
    offloads: run.offloads,
    filters: run.filters,
    claims: blueprintClaims(run.rows, opts),
    notes: notes(run, opts),
    rows: run.rows,
    summary,
    targets: checkDatapathTargets(run.rows, summary),
  };
  if (security) report.security = security;
  if (tcgGuest) report.tcgGuest = tcgGuest;
  return DatapathReportSchema.parse(report) as DatapathReport;
}

/**
 * The datapath measurements, then the anti-spoofing matrix and the TCG guest row unless turned off, as one report.
 * The guest row is an extra: without QEMU, or when the guest cannot be built or booted, the report says why instead
 * of losing the run's measurements.
 */
async function runDatapathReport(a: DatapathArgs, progress: Progress, command: string): Promise<DatapathReport> {
  const { opts } = a;
  const run = await runDatapath(opts, Math.max(1, cpus().length), progress);
  const attachments = securityAttachments(opts.topologies);
  const security = a.security && attachments.length ? await runSecurityProbe({ ...SECURITY_DEFAULTS, attachments }, progress) : undefined;
  let tcgGuest: TcgGuestResult | undefined;
  let guestNote: string | undefined;
  if (a.guest) {
    const missing = qemuUnavailable();
    if (missing) {
      guestNote = `TCG guest row not measured: ${missing}.`;
    } else {
      progress.log('TCG guest: booting the guest on macvtap and on tap+bridge (emulated; not KVM performance)');
      try {
        tcgGuest = await measureTcgGuest({ boots: a.guestBoots, onBoot: (path, i, b) => progress.log(`TCG guest: ${path} boot ${i + 1}: first ping after ${b.bootToFirstPingMs.toFixed(0)} ms`) });
      } catch (e) {
        guestNote = `TCG guest row failed: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
    if (guestNote) progress.log(guestNote);
  }
  const report = buildDatapathReport(run, opts, command, security, tcgGuest);
  if (guestNote) report.notes.push(guestNote);
  return report;
}

/** `macvtap bench [datapath options]`. Returns the exit status: 0 done, 1 the run failed, 2 usage error. */
export function datapathMain(args: string[], command: string): Promise<number> {
  return runSubcommand({
    name: 'macvtap bench',
    usage: DATAPATH_USAGE,
    needsRoot: 'it creates network namespaces, links and an Open vSwitch',
    parse: parseDatapathArgs,
    run: runDatapathReport,
    text: formatDatapathReport,
    html: async (r) => (await import('./html.js')).renderDatapathHtml(r),
  }, args, command);
}
