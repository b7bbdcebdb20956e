/**
 * `macvtap bench --compare a.json b.json`: the change between two runs of the same benchmark (datapath or control
 * plane), row by row: both medians, the change in percent, and whether b's median falls outside a's 95% interval
 * (a change the repetitions of a alone do not explain).
 */
import { readFileSync } from 'node:fs';
import { ControlReportSchema } from '../control/schema.js';
import { DatapathReportSchema } from '../datapath/schema.js';
import { num, table } from './text.js';

interface Comparable {
  key: string;
  label: string;
  unit: string;
  median: number;
  lo: number;
  hi: number;
}

function load(path: string): { kind: 'datapath' | 'control'; rows: Comparable[]; command: string; startedAt: string } {
  const raw: unknown = JSON.parse(readFileSync(path, 'utf8'));
  const schema = (raw as { schema?: unknown }).schema;
  if (typeof schema === 'string' && schema.startsWith('macvtap-bench-datapath/')) {
    const r = DatapathReportSchema.parse(raw);
    return {
      kind: 'datapath',
      command: r.command,
      startedAt: r.startedAt,
      rows: r.summary.map((s) => ({
        key: `${s.placement}|${s.poll}|${s.test}|${s.label}`,
        label: `${s.placement} ${s.poll} ${s.test} ${s.label}`,
        unit: s.unit === 'us' ? 'µs p50' : s.unit,
        median: s.value.median,
        lo: s.value.ci.lo,
        hi: s.value.ci.hi,
      })),
    };
  }
  if (typeof schema === 'string' && schema.startsWith('macvtap-bench-control/')) {
    const r = ControlReportSchema.parse(raw);
    return {
      kind: 'control',
      command: r.command,
      startedAt: r.startedAt,
      rows: r.summary.map((s) => ({
        key: `${s.scenario}|${s.phase}|${s.n}|${s.devices ?? ''}|${s.config}`,
        label: `${s.scenario} ${s.phase} N=${s.n}${s.devices ? ` @${s.devices}` : ''} ${s.config}`,
        unit: s.unit === 'us' ? 'µs/op' : 'ms',
        median: s.stats.median,
        lo: s.stats.ci.lo,
        hi: s.stats.ci.hi,
      })),
    };
  }
  throw new Error(`${path}: not a macvtap benchmark report (schema ${JSON.stringify(schema)})`);
}

/** The comparison as printable text. Throws when the files are not reports of the same benchmark. */
export function compareReports(aPath: string, bPath: string): string {
  const a = load(aPath);
  const b = load(bPath);
  if (a.kind !== b.kind) throw new Error(`cannot compare a ${a.kind} report with a ${b.kind} report`);
  const bByKey = new Map(b.rows.map((r) => [r.key, r]));
  const body: string[][] = [];
  for (const ra of a.rows) {
    const rb = bByKey.get(ra.key);
    if (!rb) continue;
    const change = ra.median !== 0 ? ((rb.median - ra.median) / Math.abs(ra.median)) * 100 : null;
    const outside = rb.median < ra.lo || rb.median > ra.hi;
    body.push([
      ra.label,
      ra.unit,
      num(ra.median),
      num(rb.median),
      change === null ? '' : `${change >= 0 ? '+' : ''}${change.toFixed(1)}%`,
      outside ? 'outside a’s CI' : '',
    ]);
  }
  const onlyA = a.rows.filter((r) => !bByKey.has(r.key)).length;
  const onlyB = b.rows.length - (a.rows.length - onlyA);
  return [
    `a: ${aPath} (${a.startedAt}) ${a.command}`,
    `b: ${bPath} (${b.startedAt}) ${b.command}`,
    '',
    table(['row', 'unit', 'a median', 'b median', 'change', ''], body, new Set([2, 3, 4])),
    '',
    `${body.length} rows in both; ${onlyA} only in a, ${onlyB} only in b.`,
  ].join('\n') + '\n';
}
