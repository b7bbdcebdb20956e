/**
 * The self-contained HTML report of the datapath benchmark: charts drawn by vega-lite, compiled to Vega and rendered
 * to SVG in Node (no browser, no script in the page, nothing fetched), inlined next to the printed report.
 * Charts: latency percentiles per topology, the latency distribution (CDF of the merged histograms), packet and bit
 * rates with their 95% intervals, CPU per packet, and every topology's ratio to the baseline with its interval.
 */
import type { TopLevelSpec } from 'vega-lite';
import { renderPage, VEGA_LITE_SCHEMA as SCHEMA, type ChartSpec } from '../report/html.js';
import { bucketCount, mergeBuckets } from '../report/stats.js';
import { formatDatapathReport } from './report.js';
import { blueprintClaims } from './claims.js';
import { tcgGuestChart } from '../guest/html.js';
import { securityChart } from '../security/html.js';
import type { DatapathReport, DatapathSummary } from './schema.js';

export type { ChartSpec } from '../report/html.js';

const TEST_LABEL: Record<DatapathSummary['test'], string> = {
  'rtt-64': 'RTT 64 B',
  'rtt-1400': 'RTT 1400 B',
  'rtt-64-raw': 'RTT 64 B, raw C loop',
  'g2p-64': 'guest→peer 64 B',
  'p2g-64': 'peer→guest 64 B',
  'g2p-1500': 'guest→peer 1500 B',
  'p2g-1500': 'peer→guest 1500 B',
  'g2p-gso': 'guest→peer GSO 64 KB',
};

const configOf = (s: { placement: string; poll: string }): string => `${s.placement}, ${s.poll}`;

/** Facet columns in run order (same-cpu block, cross-cpu block, cross-cpu busy …), not alphabetical. */
function facetColumns(report: DatapathReport): { field: 'config'; type: 'nominal'; title: null; sort: string[] } {
  const order = report.options.placements.flatMap((placement) => report.options.polls.map((poll) => configOf({ placement, poll })));
  return { field: 'config', type: 'nominal', title: null, sort: order };
}

/** A bar chart with 95%-interval error bars per topology, one column per placement/poll, bars per test. */
function barsWithCi(report: DatapathReport, id: string, title: string, yTitle: string, rows: DatapathSummary[], pick: (s: DatapathSummary) => { median: number; lo: number; hi: number } | null, log = false): ChartSpec | null {
  const values = rows
    .map((s) => ({ s, v: pick(s) }))
    .filter((x): x is { s: DatapathSummary; v: { median: number; lo: number; hi: number } } => x.v !== null)
    .map(({ s, v }) => ({ config: configOf(s), topology: s.label, test: TEST_LABEL[s.test], median: v.median, lo: v.lo, hi: v.hi }));
  if (values.length === 0) return null;
  return {
    id,
    title,
    spec: {
      $schema: SCHEMA,
      data: { values },
      facet: { column: facetColumns(report) },
      spec: {
        width: { step: 14 },
        height: 220,
        encoding: {
          x: { field: 'topology', type: 'nominal', title: null, sort: null, axis: { labelAngle: -35, labelLimit: 400 } },
          xOffset: { field: 'test', type: 'nominal' },
          color: { field: 'test', type: 'nominal', title: 'measurement' },
        },
        layer: [
          // symlog, not log: an interval can reach 0 (a run where nothing arrived), which a log scale cannot place.
          { mark: 'bar', encoding: { y: { field: 'median', type: 'quantitative', title: yTitle, ...(log ? { scale: { type: 'symlog' } } : {}) } } },
          { mark: { type: 'rule', color: 'black' }, encoding: { y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } } },
        ],
      },
    } as TopLevelSpec,
  };
}

/** The charts of a report (those with data). */
export function chartSpecs(report: DatapathReport): ChartSpec[] {
  const charts: (ChartSpec | null)[] = [];
  const sum = report.summary;
  const pctNames = [['p50', 0], ['p90', 1], ['p99', 2], ['p99.9', 3], ['max', 4]] as const;
  for (const test of ['rtt-64', 'rtt-1400'] as const) {
    const values = sum
      .filter((s) => s.test === test && s.latencyUs)
      .flatMap((s) => {
        const l = s.latencyUs!;
        const v = { p50: l.p50, p90: l.p90, p99: l.p99, 'p99.9': l.p999, max: l.max };
        return pctNames.map(([p, order]) => ({ config: configOf(s), topology: s.label, percentile: p, order, us: Math.max(v[p], 0.001) }));
      });
    if (values.length) {
      charts.push({
        id: `latency-${test}`,
        title: `Round-trip latency percentiles, ${TEST_LABEL[test]} (µs, log scale; all repetitions' histograms merged)`,
        spec: {
          $schema: SCHEMA,
          data: { values },
          facet: { column: facetColumns(report) },
          spec: {
            width: 220,
            height: 220,
            mark: { type: 'line', point: true },
            encoding: {
              x: { field: 'percentile', type: 'ordinal', sort: { field: 'order' }, title: null },
              y: { field: 'us', type: 'quantitative', scale: { type: 'log' }, title: 'RTT µs' },
              color: { field: 'topology', type: 'nominal', title: 'topology', legend: { labelLimit: 400 }, scale: { scheme: 'category20' } },
            },
          },
        } as TopLevelSpec,
      });
    }
  }

  // Distribution: cumulative fraction of round trips by RTT, from the merged buckets of every repetition.
  const cdf: { config: string; topology: string; us: number; fraction: number }[] = [];
  const groups = new Map<string, DatapathReport['rows']>();
  for (const r of report.rows) {
    if (r.test !== 'rtt-64' || !r.latency || r.latency.count === 0) continue;
    const k = `${configOf(r)}|${r.label}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(r);
  }
  for (const g of groups.values()) {
    const buckets = mergeBuckets(g.map((r) => r.latency!.buckets));
    const n = bucketCount(buckets);
    let seen = 0;
    for (const [ub, c] of buckets) {
      seen += c;
      cdf.push({ config: configOf(g[0]!), topology: g[0]!.label, us: ub / 1000, fraction: seen / n });
    }
  }
  if (cdf.length) {
    charts.push({
      id: 'latency-cdf',
      title: 'Round-trip latency distribution, 64 B (cumulative fraction of round trips; µs, log scale)',
      spec: {
        $schema: SCHEMA,
        data: { values: cdf },
        facet: { column: facetColumns(report) },
        spec: {
          width: 240,
          height: 200,
          mark: { type: 'line', interpolate: 'step-after' },
          encoding: {
            x: { field: 'us', type: 'quantitative', scale: { type: 'log' }, title: 'RTT µs' },
            y: { field: 'fraction', type: 'quantitative', title: 'fraction ≤ x' },
            color: { field: 'topology', type: 'nominal', title: 'topology', legend: { labelLimit: 400 }, scale: { scheme: 'category20' } },
          },
        },
      } as TopLevelSpec,
    });
  }

  const ci = (s: { median: number; ci: { lo: number; hi: number } } | null) => (s ? { median: s.median, lo: s.ci.lo, hi: s.ci.hi } : null);
  charts.push(barsWithCi(report, 'throughput-pps', 'Packet rate, 64-byte frames (Mpps, median and 95% interval over repetitions)', 'Mpps',
    sum.filter((s) => s.unit === 'Mpps'), (s) => ci(s.value)));
  charts.push(barsWithCi(report, 'throughput-gbps', 'Bit rate, 1500-byte packets and GSO super-frames (Gbit/s of frames)', 'Gbit/s',
    sum.filter((s) => s.unit === 'Gbit/s'), (s) => ci(s.value)));
  // Log scale: busy-polling and userspace OVS cost orders of magnitude more per packet than the kernel paths.
  charts.push(barsWithCi(report, 'cpu-per-packet', 'CPU per packet, whole machine from /proc/stat (µs of busy CPU per delivered packet, log scale)', 'µs CPU / packet',
    sum.filter((s) => s.test === 'g2p-64' || s.test === 'p2g-64' || s.test === 'rtt-64'), (s) => ci(s.cpuUsPerPacket), true));

  // A ratio of 0 (nothing arrived, e.g. GSO through userspace OVS) has no place on a log axis: such rows are left to
  // the table and the notes; interval ends at 0 are drawn from 1/100 of the median.
  const ratios = sum
    .filter((s) => s.vsBaseline && s.test !== 'rtt-64-raw' && s.vsBaseline.median > 0)
    .map((s) => ({
      config: configOf(s), topology: s.label, test: TEST_LABEL[s.test], median: s.vsBaseline!.median,
      lo: Math.max(s.vsBaseline!.ci.lo, s.vsBaseline!.median / 100), hi: s.vsBaseline!.ci.hi,
    }));
  if (ratios.length) {
    const rowEnc = {
      y: { field: 'test', type: 'nominal', title: null },
      yOffset: { field: 'topology', type: 'nominal' },
      color: { field: 'topology', type: 'nominal', title: 'topology', legend: { labelLimit: 400 }, scale: { scheme: 'category20' } },
    };
    charts.push({
      id: 'ratios',
      title: `Ratio to ${report.options.baseline} per repetition pair (median and 95% interval; RTT: lower is better, rates: higher is better)`,
      spec: {
        $schema: SCHEMA,
        data: { values: ratios },
        facet: { column: facetColumns(report) },
        spec: {
          width: 220,
          height: 240,
          layer: [
            { mark: { type: 'rule' }, encoding: { ...rowEnc, x: { field: 'lo', type: 'quantitative', scale: { type: 'log' }, title: `÷ ${report.options.baseline}` }, x2: { field: 'hi' } } },
            { mark: { type: 'point', filled: true }, encoding: { ...rowEnc, x: { field: 'median', type: 'quantitative' } } },
            // The baseline itself: a vertical line at 1 (no row encoding, so it spans the whole height).
            { mark: { type: 'rule', color: 'gray', strokeDash: [3, 3] }, encoding: { x: { datum: 1 } } },
          ],
        },
      } as TopLevelSpec,
    });
  }
  if (report.security) charts.push(securityChart(report.security));
  if (report.tcgGuest) charts.push(tcgGuestChart(report.tcgGuest));
  return charts.filter((c): c is ChartSpec => c !== null);
}

/** The whole HTML page: header facts, every chart as inline SVG, the printed report, the notes. */
export async function renderDatapathHtml(report: DatapathReport): Promise<string> {
  const h = report.host;
  const claims = report.claims ?? blueprintClaims(report.rows, report.options);
  return renderPage({
    title: 'macvtap datapath benchmark',
    ...(claims.length ? { lead: { title: 'Blueprint claims, measured', lines: claims.map((c) => c.text) } } : {}),
    facts: [
      { term: 'host', text: `${h.kernel} · ${h.cpu} · ${h.vcpus} vCPUs · node ${h.node}` },
      { term: 'Open vSwitch', text: h.ovs ? `${h.ovs.version}, datapath ${h.ovs.datapath}` : 'not available' },
      { term: 'command', text: report.command, code: true },
      { term: 'run', text: `${report.startedAt}, ${report.durationS.toFixed(0)} s, ${report.options.reps} repetitions, baseline ${report.options.baseline}` },
    ],
    charts: chartSpecs(report),
    text: formatDatapathReport(report),
  });
}
