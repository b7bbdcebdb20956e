/**
 * The printed report of the datapath benchmark: per placement and poll mode, a latency table and a throughput/CPU
 * table with one row per topology, then the targets and the notes a reader needs (what each number includes).
 */
import { num, table, targetsTable } from '../report/text.js';
import type { DatapathReport, DatapathSummary } from './schema.js';
import { formatTcgGuest } from '../guest/report.js';
import { TCG_GUEST_LABEL } from '../guest/schema.js';
import { formatMatrix } from '../security/report.js';
import { blueprintClaims } from './claims.js';

type Stats = NonNullable<DatapathSummary['vsBaseline']>;

const ratio = (s: Stats | null, isBase: boolean): string =>
  s ? `${num(s.median)}× [${num(s.ci.lo)}–${num(s.ci.hi)}]` : isBase ? '1 (base)' : '';

const withCi = (s: Stats): string => `${num(s.median)} [${num(s.ci.lo)}–${num(s.ci.hi)}]`;

function lossPct(s: DatapathSummary | undefined): string {
  if (!s || s.sent === 0) return '';
  return `${((100 * s.lost) / s.sent).toFixed(s.lost === 0 ? 0 : 2)}%`;
}

/** The latency and throughput tables of one (placement, poll). */
function sections(report: DatapathReport, placement: string, poll: string): string[] {
  const rows = report.summary.filter((s) => s.placement === placement && s.poll === poll);
  if (rows.length === 0) return [];
  const labels = [...new Set(rows.map((s) => s.label))];
  const get = (label: string, test: DatapathSummary['test']) => rows.find((s) => s.label === label && s.test === test);
  const base = report.options.baseline;
  const out: string[] = [];

  const lat = labels.map((label) => {
    const a = get(label, 'rtt-64');
    const b = get(label, 'rtt-1400');
    const raw = get(label, 'rtt-64-raw');
    const isBase = (a ?? b)?.topology === base;
    return [
      label,
      a?.latencyUs ? num(a.latencyUs.p50) : '',
      a?.latencyUs ? num(a.latencyUs.p90) : '',
      a?.latencyUs ? num(a.latencyUs.p99) : '',
      a?.latencyUs ? num(a.latencyUs.p999) : '',
      a?.latencyUs ? num(a.latencyUs.max) : '',
      a ? withCi(a.value) : '',
      a ? ratio(a.vsBaseline, isBase) : '',
      b?.latencyUs ? num(b.latencyUs.p50) : '',
      b?.latencyUs ? num(b.latencyUs.p99) : '',
      b ? ratio(b.vsBaseline, isBase) : '',
      raw?.latencyUs ? num(raw.latencyUs.p50) : '',
      a?.cpuUsPerPacket ? num(a.cpuUsPerPacket.median) : '',
      lossPct(a),
    ];
  });
  out.push(
    '',
    `Latency, ${placement}, ${poll} — UDP ping-pong round trip, µs (percentiles of all repetitions merged; ` +
      `p50 per repetition: median [95% CI]; ÷ ${base} per repetition pair)`,
    table(
      ['topology', '64B p50', 'p90', 'p99', 'p99.9', 'max', 'p50/rep [CI]', `÷ base`, '1400B p50', 'p99', '÷ base', 'raw p50', 'CPU µs/pkt', 'lost'],
      lat,
      new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]),
    ),
  );

  const thr = labels
    .filter((label) => ['g2p-64', 'p2g-64', 'g2p-1500', 'p2g-1500', 'g2p-gso'].some((t) => get(label, t as DatapathSummary['test'])))
    .map((label) => {
      const g64 = get(label, 'g2p-64');
      const p64 = get(label, 'p2g-64');
      const g15 = get(label, 'g2p-1500');
      const p15 = get(label, 'p2g-1500');
      const gso = get(label, 'g2p-gso');
      const isBase = (g64 ?? g15)?.topology === base;
      const lost = [g64, p64, g15, p15, gso].filter((s): s is DatapathSummary => s !== undefined);
      const sent = lost.reduce((s, x) => s + x.sent, 0);
      const dropped = lost.reduce((s, x) => s + x.lost, 0);
      return [
        label,
        g64 ? withCi(g64.value) : '',
        g64 ? ratio(g64.vsBaseline, isBase) : '',
        p64 ? withCi(p64.value) : '',
        g15 ? withCi(g15.value) : '',
        p15 ? withCi(p15.value) : '',
        gso ? withCi(gso.value) : '',
        g64?.cpuUsPerPacket ? num(g64.cpuUsPerPacket.median) : '',
        g64 ? ratio(g64.cpuVsBaseline, isBase) : '',
        g15?.cpuSPerGbit ? num(g15.cpuSPerGbit.median) : '',
        g64?.vswitchdCpuS !== null && g64?.vswitchdCpuS !== undefined ? num(g64.vswitchdCpuS) : '',
        sent ? `${((100 * dropped) / sent).toFixed(2)}%` : '',
      ];
    });
  if (thr.length) {
    out.push(
      '',
      `Throughput and CPU, ${placement}, ${poll} — median [95% CI] over repetitions`,
      table(
        ['topology', 'g→p Mpps 64B', '÷ base', 'p→g Mpps 64B', 'g→p Gbit/s 1500B', 'p→g Gbit/s 1500B', 'g→p GSO Gbit/s',
          'CPU µs/pkt g→p 64B', 'CPU ÷ base', 'CPU-s/Gbit g→p 1500B', 'ovs-vswitchd CPU-s', 'loss'],
        thr,
        new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
      ),
    );
  }
  return out;
}

/**
 * The claims header: one line per blueprint claim, first thing in the report (reports without claims — schema `/1` —
 * get them computed from their rows).
 */
export function claimsLines(report: DatapathReport): string[] {
  const claims = report.claims ?? blueprintClaims(report.rows, report.options);
  if (!claims.length) return [];
  return ['Blueprint claims, measured (ratio per repetition pair: median [interval]):', ...claims.map((c) => `  ${c.text}`), ''];
}

/** The whole printed report. */
export function formatDatapathReport(report: DatapathReport): string {
  const h = report.host;
  const o = report.options;
  const parts: string[] = [
    `macvtap datapath benchmark (${report.schema})`,
    ...claimsLines(report),
    `host     ${h.kernel} · ${h.cpu} · ${h.vcpus} vCPUs · node ${h.node} · ` +
      (h.ovs ? `Open vSwitch ${h.ovs.version} (datapath ${h.ovs.datapath})` : 'Open vSwitch: not available'),
    `command  ${report.command}`,
    `method   ${o.reps} repetitions${o.warmup ? ' after a warm-up' : ''}, topologies interleaved within each; ` +
      `${o.latencyMs} ms per latency run, ${o.throughputMs} ms per stream ` +
      `(${o.ratePps ? `sent at ${o.ratePps} packets/s` : 'sent as fast as possible'}); ${report.durationS.toFixed(0)} s in all.`,
    `         baseline for ratios: ${o.baseline}; placements ${o.placements.join(', ')}; poll ${o.polls.join(', ')}.`,
  ];
  // Say what the brackets really cover: with few repetitions the order-statistic interval falls short of 95%.
  const level = report.summary[0]?.value.ci.level;
  if (level !== undefined) {
    parts.push(`         [brackets]: order-statistic interval of the median over repetitions, real coverage ${Math.round(level * 100)}% ` +
      `with ${o.reps} repetition${o.reps === 1 ? '' : 's'} (95% needs ≥ 6; ratios: per repetition pair).`);
  }
  for (const u of report.unavailable) parts.push(`UNAVAILABLE ${u.label}: ${u.reason}`);
  for (const s of report.skipped) parts.push(`not measured: ${s}`);
  for (const placement of o.placements) for (const poll of o.polls) parts.push(...sections(report, placement, poll));
  if (report.targets.length) parts.push('', targetsTable(report.targets));
  const filt = Object.entries(report.filters ?? {});
  if (filt.length) parts.push('', 'Filters', ...filt.map(([k, v]) => `  ${k}: ${v}`));
  const offl = Object.entries(report.offloads).filter(([, v]) => v.length);
  if (offl.length) parts.push('', 'Offload changes', ...offl.map(([k, v]) => `  ${k}: ${v.join(', ')}`));
  if (report.notes.length) parts.push('', 'Notes', ...report.notes.map((n) => `- ${n}`));
  if (report.security) parts.push('', formatMatrix(report.security).trimEnd());
  if (report.tcgGuest) {
    parts.push('', `${TCG_GUEST_LABEL} — a real guest under QEMU TCG (every instruction emulated): compares the two host attachments under one slow guest, never KVM performance`);
    parts.push(formatTcgGuest(report.tcgGuest).trimEnd(), `note: ${report.tcgGuest.note}`);
  }
  return parts.join('\n') + '\n';
}
