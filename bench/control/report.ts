/**
 * The printed report of the control-plane benchmark: plain-text tables on stdout, one per scenario, then the targets
 * and the notes a reader needs to interpret the numbers.
 */
import { CONFIG_LABELS, type ConfigId } from './driver.js';
import type { ControlReport, RawRow, SummaryRow } from './schema.js';
import { median } from '../report/stats.js';
import { num, table, targetsTable } from '../report/text.js';

const PHASE_LABEL: Record<RawRow['phase'], string> = {
  'create': 'create+up',
  'open-queue': 'open 1 queue',
  'close-queue': 'close it',
  'delete': 'delete 1 by 1',
  'delete-rest-group': 'rest by group',
  'delete-group': 'delete by group',
  'create-fill': 'create (fill)',
  'create-window': 'create+up',
  'getlink': 'getLink(lo)',
  'getlink-par': 'getLink(lo) ×depth',
  'getlink-sync': 'getLinkSync(lo)',
  'getlink-raw': 'RTM_GETLINK lo in C',
};

/** Median p99 per operation across repetitions, µs, when the configuration timed operations one by one. */
function p99Of(rows: RawRow[], s: SummaryRow): string {
  if (s.unit === 'ms') return ''; // one operation for the whole phase: no per-operation distribution
  const ps = rows
    .filter((r) => r.config === s.config && r.scenario === s.scenario && r.phase === s.phase && r.n === s.n
      && r.devices === s.devices && r.perOpPercentilesUs && r.n > 1)
    .map((r) => r.perOpPercentilesUs!.p99);
  return ps.length ? num(median(ps)) : '';
}

function section(report: ControlReport, scenario: RawRow['scenario'], sizeHeader: string, sizeOf: (s: SummaryRow) => string): string {
  const rows = report.summary.filter((s) => s.scenario === scenario);
  if (rows.length === 0) return '';
  const body = rows.map((s) => {
    const unit = s.unit === 'us' ? 'µs' : 'ms';
    const ci = s.stats.ci;
    return [
      PHASE_LABEL[s.phase] + (s.unit === 'ms' ? ' (total)' : ''),
      sizeOf(s),
      CONFIG_LABELS[s.config as ConfigId],
      `${num(s.stats.median)} ${unit}`,
      `${num(s.stats.min)}–${num(s.stats.max)}`,
      `${num(ci.lo)}–${num(ci.hi)} (${Math.round(ci.level * 100)}%)`,
      s.vsBatch ? `${num(s.vsBatch.median)}× [${num(s.vsBatch.min)}–${num(s.vsBatch.max)}]` : s.config === 'ip-batch' ? '1 (ref)' : '',
      p99Of(report.rows, s),
    ];
  });
  return table(
    ['phase', sizeHeader, 'configuration', 'median', 'min–max', 'CI of median', '÷ ip -batch', 'p99/op µs'],
    body,
    new Set([1, 3, 4, 5, 6, 7]),
  );
}

/**
 * `macvtap − ip -batch` per created device at each scaling checkpoint, per repetition pair (an estimate of the
 * userspace share), and this package's own user CPU per create (measured).
 */
function userspaceLines(report: ControlReport): string[] {
  const out: string[] = [];
  for (const cfg of ['macvtap', 'netlink'] as const) {
    const cells: string[] = [];
    for (const c of report.options.scale) {
      const pick = (id: string) => new Map(report.rows
        .filter((r) => r.config === id && r.scenario === 'scaling' && r.phase === 'create-window' && r.devices === c)
        .map((r) => [r.rep, r.perOpUs]));
      const a = pick(cfg);
      const b = pick('ip-batch');
      const reps = [...a.keys()].filter((k) => b.has(k));
      if (reps.length === 0) continue;
      const diff = median(reps.map((k) => a.get(k)! - b.get(k)!));
      const share = median(reps.map((k) => (a.get(k)! - b.get(k)!) / a.get(k)!));
      cells.push(`N=${c}: ${num(diff)} µs (${Math.round(share * 100)}% of ${num(median(reps.map((k) => a.get(k)!)))} µs)`);
    }
    if (cells.length) out.push(`  ${CONFIG_LABELS[cfg]} − ip -batch per device: ${cells.join(' · ')}`);
  }
  // Measured directly for this package: its process's user-mode CPU per create (the kernel's work is not in it).
  const user = report.options.scale.flatMap((c) => {
    const v = report.rows
      .filter((r) => r.config === 'macvtap' && r.scenario === 'scaling' && r.phase === 'create-window' && r.devices === c && r.userCpuUs !== undefined)
      .map((r) => r.userCpuUs!);
    return v.length ? [`N=${c}: ${num(median(v))} µs`] : [];
  });
  if (user.length) out.push(`  ${CONFIG_LABELS.macvtap}, user CPU per create: ${user.join(' · ')}`);
  return out;
}

/** The whole printed report. */
export function formatControlReport(report: ControlReport): string {
  const h = report.host;
  const o = report.options;
  const parts: string[] = [];
  parts.push(
    `macvtap control-plane benchmark (${report.schema})`,
    `host     ${h.kernel} · ${h.cpu} · ${h.vcpus} vCPUs · node ${h.node} · ${h.iproute2}` +
      (h.netlinkPackage ? ` · netlink ${h.netlinkPackage}` : ''),
    `command  ${report.command}`,
    `method   ${o.reps} repetition${o.reps === 1 ? '' : 's'}${o.warmup ? ' after a warm-up' : ''}, configurations interleaved ` +
      `(${o.configs.join(', ')}) within each, the first one rotating, one namespace ${report.namespace} (lower: veth), ${report.durationS.toFixed(0)} s.`,
    `         median over repetitions, min–max, order-statistic CI of the median (its real coverage in brackets),`,
    `         "÷ ip -batch" = this configuration ÷ ip -batch per repetition pair (median [min–max]).`,
    `         ip -batch is timed between marker commands inside its process (its start and exit left out).`,
  );
  for (const u of report.unavailable) parts.push(`UNAVAILABLE ${CONFIG_LABELS[u.id]}: ${u.reason}`);

  const lifecycle = section(report, 'lifecycle', 'N', (s) => String(s.n));
  if (lifecycle) parts.push('', 'Lifecycle: create (+up) → open 1 queue → close → delete, per device', lifecycle);
  const teardown = section(report, 'teardown', 'N', (s) => String(s.n));
  if (teardown) parts.push('', 'Bulk teardown by group (one RTM_DELLINK)', teardown);
  const scaling = section(report, 'scaling', 'devices', (s) => (s.phase === 'create-window' ? `${s.devices! - s.n + 1}–${s.devices}` : String(s.n)));
  if (scaling) {
    parts.push('', 'Scaling: create cost per device just below each device count, then removal of all by group', scaling);
    parts.push(...userspaceLines(report));
  }
  const getlink = section(report, 'getlink', 'calls', (s) => String(s.n));
  if (getlink) parts.push('', `Cheap call: RTM_GETLINK lo in sequence (×depth: ${o.parallelDepth} in flight), per call`, getlink);

  if (report.targets.length) parts.push('', targetsTable(report.targets));
  if (report.notes.length) parts.push('', 'Notes', ...report.notes.map((n) => `- ${n}`));
  return parts.join('\n') + '\n';
}
