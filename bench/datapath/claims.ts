/**
 * The claims header: one line per blueprint claim (lower latency, higher throughput, lower CPU per throughput, and
 * security — macvtap can now carry port security and security groups), each the measured ratio with its interval and
 * what it was measured against, so a reader has the answer before the tables and charts.
 *
 * Ratios are per repetition pair (the two topologies ran back to back in every repetition), summarised by their median
 * and order-statistic interval (report/stats.ts), on the first placement/poll of the run (same-cpu, block by default).
 * The comparison is secured against secured — macvtap with port security and 100 rules against the Linux bridge
 * reference carrying the same policy — when the run has both, else unfiltered against unfiltered. The security line
 * is what the policy costs on macvtap: secured ÷ unfiltered macvtap.
 */
import { pairedByRep, summarize, type Summary } from '../report/stats.js';
import type { Claim, DatapathOptions, DatapathRow } from './schema.js';
import { byRep, mainValue } from './summary.js';
import type { TopologyId } from '../testbed/topology-ids.js';

const f2 = (x: number): string => x.toFixed(2);

/** `0.85× [0.80–0.90]`. */
export function ratioText(s: Summary): string {
  return `${f2(s.median)}× [${f2(s.ci.lo)}–${f2(s.ci.hi)}]`;
}

/** What the interval says about "below 1" / "above 1". */
function reading(s: Summary, better: 'lower' | 'higher', what: string): string {
  if (s.ci.hi < 1) return better === 'lower' ? `${what} lower` : `${what} lower (the claim does not hold here)`;
  if (s.ci.lo > 1) return better === 'higher' ? `${what} higher` : `${what} higher (the claim does not hold here)`;
  return 'not distinguishable from 1× (interval includes it)';
}

interface Pair {
  of: TopologyId;
  against: TopologyId;
}

/** The pair the performance claims compare: secured vs secured (100 rules) when both ran, else unfiltered. */
export function claimPair(rows: readonly DatapathRow[]): Pair {
  const ran = new Set(rows.map((r) => r.topology));
  if (ran.has('macvtap-bridge+nft100') && ran.has('tap+linuxbridge+nft100')) return { of: 'macvtap-bridge+nft100', against: 'tap+linuxbridge+nft100' };
  return { of: 'macvtap-bridge', against: 'tap+linuxbridge' };
}

/** The paired ratio of `of` ÷ `against` on one (test, placement, poll); null when either is missing. */
export function pairedRatio(
  rows: readonly DatapathRow[], of: TopologyId, against: TopologyId, test: DatapathRow['test'],
  placement: DatapathRow['placement'], poll: DatapathRow['poll'], value: (r: DatapathRow) => number | null = mainValue,
): Summary | null {
  const pick = (t: TopologyId): DatapathRow[] => rows.filter((r) => r.topology === t && r.test === test && r.placement === placement && r.poll === poll);
  const a = pick(of);
  const b = pick(against);
  if (!a.length || !b.length) return null;
  const r = pairedByRep(byRep(a, value), byRep(b, value));
  return r.length ? summarize(r) : null;
}

/** The four claims lines of a run. */
export function blueprintClaims(rows: readonly DatapathRow[], opts: Pick<DatapathOptions, 'placements' | 'polls'>): Claim[] {
  // The first configuration the run measured, in run order (same-cpu block first by default).
  const configs = opts.placements.flatMap((placement) => opts.polls.map((poll) => ({ placement, poll })));
  const cfg = configs.find((c) => rows.some((r) => r.placement === c.placement && r.poll === c.poll)) ?? configs[0] ?? { placement: 'same-cpu', poll: 'block' };
  const { placement, poll } = cfg;
  const label = (t: TopologyId): string => rows.find((r) => r.topology === t)?.label ?? t;
  const pair = claimPair(rows);
  const secured = pair.of !== 'macvtap-bridge';
  const same = secured ? ' (both with the same port policy: anti-spoofing + 100 stateless rules)' : ' (both unfiltered)';
  const out: Claim[] = [];
  const line = (
    claim: Claim['claim'], title: string, of: TopologyId, against: TopologyId, test: DatapathRow['test'], what: string,
    judge: (s: Summary) => string, value?: (r: DatapathRow) => number | null,
  ): void => {
    const s = pairedRatio(rows, of, against, test, placement, poll, value);
    const measure = `${what}, ${placement}, ${poll}`;
    const text = s
      ? `${title}: ${label(of)} ÷ ${label(against)} = ${ratioText(s)} — ${measure}; ${judge(s)}`
      : `${title}: not measured in this run (needs ${label(of)} and ${label(against)} on ${measure})`;
    out.push({ claim, text, ratio: s, of: label(of), against: label(against), measure });
  };
  line('latency', `latency${same}`, pair.of, pair.against, 'rtt-64', 'UDP ping-pong RTT p50 64 B', (s) => reading(s, 'lower', 'latency'));
  line('throughput', `throughput${same}`, pair.of, pair.against, 'g2p-64', 'guest→peer 64 B packet rate', (s) => reading(s, 'higher', 'packet rate'));
  line('cpu', `CPU per packet${same}`, pair.of, pair.against, 'g2p-64', 'whole-machine CPU µs per packet, guest→peer 64 B',
    (s) => reading(s, 'lower', 'CPU per packet'), (r) => r.cpuUsPerPacket);
  line('security', 'security (what port security + 100 rules cost macvtap)', 'macvtap-bridge+nft100', 'macvtap-bridge', 'rtt-64',
    'UDP ping-pong RTT p50 64 B', (s) => `target ≤ 1.10×: ${s.median <= 1.1 ? 'met' : 'NOT MET'} (median)`);
  return out;
}
