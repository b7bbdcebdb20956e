/**
 * Turns the datapath benchmark's raw repetitions into summary rows (median and 95% interval over repetitions,
 * latency percentiles from the merged histograms, ratios to the baseline per repetition pair) and judges the
 * datapath targets on them.
 */
import type { Target } from '../report/schema.js';
import { bucketCount, bucketQuantile, mergeBuckets, pairedByRep, summarize, type Summary } from '../report/stats.js';
import type { DatapathOptions, DatapathRow, DatapathSummary } from './schema.js';

type Key = Pick<DatapathRow, 'topology' | 'placement' | 'poll' | 'test'>;
const keyOf = (r: Key): string => `${r.placement}|${r.poll}|${r.test}|${r.topology}`;

/** The unit of a test's main number. */
export function unitOf(test: DatapathRow['test']): DatapathSummary['unit'] {
  if (test.startsWith('rtt-')) return 'us';
  return test.endsWith('-64') ? 'Mpps' : 'Gbit/s';
}

/** A row's main number: RTT p50 µs, Mpps, or Gbit/s. `null` when nothing got through (e.g. every reply lost). */
export function mainValue(r: DatapathRow): number | null {
  if (r.test.startsWith('rtt-')) return r.latency && r.latency.count > 0 ? r.latency.p50Ns / 1000 : null;
  if (r.test.endsWith('-64')) return r.pps / 1e6;
  return r.gbps;
}

/** Merged latency of several repetitions, µs: percentiles of the summed histogram, never of averaged percentiles. */
export function mergeLatency(rows: DatapathRow[]): DatapathSummary['latencyUs'] {
  const lat = rows.map((r) => r.latency).filter((l): l is NonNullable<DatapathRow['latency']> => l !== null && l.count > 0);
  if (lat.length === 0) return null;
  const buckets = mergeBuckets(lat.map((l) => l.buckets));
  const n = bucketCount(buckets);
  if (n === 0) return null;
  const max = Math.max(...lat.map((l) => l.maxNs));
  const total = lat.reduce((s, l) => s + l.count, 0);
  const q = (p: number): number => bucketQuantile(buckets, p, max) / 1000;
  return {
    count: total,
    min: Math.min(...lat.map((l) => l.minNs)) / 1000,
    mean: lat.reduce((s, l) => s + l.meanNs * l.count, 0) / total / 1000,
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    p999: q(0.999),
    max: max / 1000,
  };
}

/** One number per repetition (the last row of each repetition wins; null and non-finite values left out). */
export function byRep(rows: DatapathRow[], f: (r: DatapathRow) => number | null): Map<number, number> {
  const m = new Map<number, number>();
  for (const r of rows) {
    const v = f(r);
    if (v !== null && Number.isFinite(v)) m.set(r.rep, v);
  }
  return m;
}

const stats = (xs: number[]): Summary | null => (xs.length ? summarize(xs) : null);

/** Summary rows in run order (placement, poll, test, topology). */
export function summarizeDatapath(rows: DatapathRow[], baseline: DatapathOptions['baseline']): DatapathSummary[] {
  const groups = new Map<string, DatapathRow[]>();
  for (const r of rows) {
    const k = keyOf(r);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(r);
  }
  const out: DatapathSummary[] = [];
  for (const g of groups.values()) {
    const first = g[0]!;
    const values = g.map(mainValue).filter((v): v is number => v !== null);
    if (values.length === 0) {
      // Nothing got through in any repetition: keep the row visible with zeros rather than drop it.
      values.push(0);
    }
    const base = first.topology === baseline ? null : groups.get(keyOf({ ...first, topology: baseline }));
    const vsBaseline = base ? stats(pairedByRep(byRep(g, mainValue), byRep(base, mainValue))) : null;
    const cpuPer = (r: DatapathRow): number | null => r.cpuUsPerPacket;
    const cpuVsBaseline = base ? stats(pairedByRep(byRep(g, cpuPer), byRep(base, cpuPer))) : null;
    const ovs = g.map((r) => r.cpu.vswitchd).filter((v): v is number => v !== null);
    out.push({
      topology: first.topology,
      label: first.label,
      placement: first.placement,
      poll: first.poll,
      test: first.test,
      unit: unitOf(first.test),
      value: summarize(values),
      latencyUs: first.test.startsWith('rtt-') ? mergeLatency(g) : null,
      sent: g.reduce((s, r) => s + r.sent, 0),
      lost: g.reduce((s, r) => s + r.lost, 0),
      cpuUsPerPacket: stats(g.map(cpuPer).filter((v): v is number => v !== null)),
      cpuSPerGbit: stats(g.map((r) => r.cpuSPerGbit).filter((v): v is number => v !== null)),
      vswitchdCpuS: ovs.length ? summarize(ovs).median : null,
      vsBaseline,
      cpuVsBaseline,
    });
  }
  return out;
}

const f2 = (x: number): string => x.toFixed(2);

/** The datapath targets on this run; `met: null` when the run lacks the data. */
export function checkDatapathTargets(rows: DatapathRow[], summary: DatapathSummary[]): Target[] {
  const out: Target[] = [];
  // Guest endpoint vs the raw C read/write loop: RTT p50 ratio per repetition pair, on macvtap-bridge.
  for (const placement of ['same-cpu', 'cross-cpu'] as const) {
    for (const poll of ['block', 'busy'] as const) {
      const pick = (test: DatapathRow['test']): DatapathRow[] =>
        rows.filter((r) => r.topology === 'macvtap-bridge' && r.placement === placement && r.poll === poll && r.test === test);
      const echo = pick('rtt-64');
      const raw = pick('rtt-64-raw');
      if (!echo.length || !raw.length) continue;
      const r = pairedByRep(byRep(echo, mainValue), byRep(raw, mainValue));
      const s = stats(r);
      out.push({
        name: `guest endpoint vs raw C read/write loop, RTT p50 64 B, macvtap-bridge ${placement} ${poll}`,
        target: '≤ 1.10×',
        value: s ? `${f2(s.median)}× [${f2(s.min)}–${f2(s.max)}]` : 'no data',
        met: s ? s.median <= 1.1 : null,
      });
    }
  }
  // The secured topologies' targets: port security + 100 rules on macvtap costs ≤ 10% of its round trip, and its CPU
  // per packet stays below the unfiltered Linux bridge's. Per repetition pair, as every ratio here.
  for (const placement of ['same-cpu', 'cross-cpu'] as const) {
    for (const poll of ['block', 'busy'] as const) {
      const pick = (t: DatapathRow['topology'], test: DatapathRow['test']): DatapathRow[] =>
        rows.filter((r) => r.topology === t && r.placement === placement && r.poll === poll && r.test === test);
      const sec = pick('macvtap-bridge+nft100', 'rtt-64');
      const open = pick('macvtap-bridge', 'rtt-64');
      if (sec.length && open.length) {
        const s = stats(pairedByRep(byRep(sec, mainValue), byRep(open, mainValue)));
        out.push({
          name: `macvtap-bridge + port security + 100 rules ÷ unfiltered macvtap-bridge, RTT p50 64 B, ${placement} ${poll}`,
          target: '≤ 1.10×',
          value: s ? `${f2(s.median)}× [${f2(s.ci.lo)}–${f2(s.ci.hi)}]` : 'no data',
          met: s ? s.median <= 1.1 : null,
        });
      }
      const cpu = (r: DatapathRow): number | null => r.cpuUsPerPacket;
      const secG = pick('macvtap-bridge+nft100', 'g2p-64');
      const lb = pick('tap+linuxbridge', 'g2p-64');
      if (secG.length && lb.length) {
        const s = stats(pairedByRep(byRep(secG, cpu), byRep(lb, cpu)));
        out.push({
          name: `CPU µs/packet g→p 64 B, macvtap-bridge + port security + 100 rules ÷ unfiltered tap+linuxbridge, ${placement} ${poll}`,
          target: '< 1×',
          value: s ? `${f2(s.median)}× [${f2(s.ci.lo)}–${f2(s.ci.hi)}]` : 'no data',
          met: s ? s.median < 1 : null,
        });
      }
    }
  }
  // GSO bulk guest→peer vs veth-direct: our own UDP stream over the veth (no TCP, no GSO on that side).
  for (const placement of ['same-cpu', 'cross-cpu'] as const) {
    for (const poll of ['block', 'busy'] as const) {
      const find = (topology: DatapathRow['topology'], test: DatapathRow['test']) =>
        summary.find((s) => s.topology === topology && s.test === test && s.placement === placement && s.poll === poll);
      const gso = find('macvtap-bridge', 'g2p-gso');
      const floor = find('veth-direct', 'g2p-1500');
      if (!gso || !floor) continue;
      const ratio = floor.value.median > 0 ? gso.value.median / floor.value.median : null;
      out.push({
        name: `GSO bulk guest→peer (macvtap-bridge) vs veth-direct UDP stream 1472 B (no TCP), ${placement} ${poll}`,
        target: '≥ 0.5× (within 2×)',
        value: ratio === null ? 'no data' : `${f2(gso.value.median)} vs ${f2(floor.value.median)} Gbit/s = ${f2(ratio)}×`,
        met: ratio === null ? null : ratio >= 0.5,
      });
    }
  }
  return out;
}
