/**
 * The self-contained HTML report of the control-plane benchmark (`macvtap bench control --html FILE`), drawn with
 * the same page and vega-lite rendering as the datapath report (report/html.ts). Charts: create(+up) per device at
 * each lifecycle size, bulk deletes by group (whole request), the scaling windows, the cost of one getLink call, and
 * every configuration's ratio to `ip -batch`. Each configuration is one series with the same colour in every chart;
 * points are medians over repetitions and the bars through them span min–max.
 */
import type { TopLevelSpec } from 'vega-lite';
import { formatControlReport } from './report.js';
import { num } from '../report/text.js';
import { CONFIG_LABELS } from './driver.js';
import { renderPage, VEGA_LITE_SCHEMA, type ChartSpec } from '../report/html.js';
import type { ControlReport, SummaryRow } from './schema.js';

/** One plotted value: a configuration's median and min–max at a category of the x axis. */
interface Point {
  config: string;
  at: string;
  median: number;
  lo: number;
  hi: number;
}

/** Labels of the configurations that ran, in run order. */
function ranLabels(report: ControlReport): string[] {
  const missing = new Set(report.unavailable.map((u) => u.id));
  return report.options.configs.filter((id) => !missing.has(id)).map((id) => CONFIG_LABELS[id]);
}

/** The colour encoding shared by every chart: a fixed domain in run order, so a configuration keeps its colour. */
function colorOf(report: ControlReport): Record<string, unknown> {
  return {
    field: 'config',
    type: 'nominal',
    title: 'configuration',
    scale: { domain: ranLabels(report) },
    // Labels such as "macvtap (this package)" must not be cut to "macvtap (this…".
    legend: { labelLimit: 0 },
  };
}

const point = (s: SummaryRow, at: string): Point => ({
  config: CONFIG_LABELS[s.config],
  at,
  median: s.stats.median,
  lo: s.stats.min,
  hi: s.stats.max,
});

/**
 * Median points with min–max rules per category, one offset column per configuration. On a log axis a value at or
 * below 0 has no place: `ip -batch` times are net of a subtracted round trip and can come out so for a tiny phase;
 * such medians are left to the table and range ends are drawn from 1/100 of the median.
 */
function pointsWithRange(report: ControlReport, id: string, title: string, xTitle: string | null, yTitle: string, all: Point[], order: string[], log: boolean): ChartSpec | null {
  const values = log ? all.filter((p) => p.median > 0).map((p) => ({ ...p, lo: Math.max(p.lo, p.median / 100) })) : all;
  if (values.length === 0) return null;
  const y = { type: 'quantitative', title: yTitle, ...(log ? { scale: { type: 'log' } } : {}) };
  return {
    id,
    title,
    spec: {
      $schema: VEGA_LITE_SCHEMA,
      data: { values },
      // With xOffset the step is that of one configuration's band inside a category.
      width: { step: 26 },
      height: 260,
      encoding: {
        x: { field: 'at', type: 'nominal', title: xTitle, sort: order, axis: { labelAngle: 0, labelLimit: 0 } },
        xOffset: { field: 'config', type: 'nominal', sort: ranLabels(report) },
        color: colorOf(report),
        tooltip: [{ field: 'config' }, { field: 'median' }, { field: 'lo' }, { field: 'hi' }],
      },
      layer: [
        { mark: { type: 'rule', strokeWidth: 2 }, encoding: { y: { field: 'lo', ...y }, y2: { field: 'hi' } } },
        { mark: { type: 'point', filled: true, size: 50 }, encoding: { y: { field: 'median', ...y } } },
      ],
    } as TopLevelSpec,
  };
}

/** The charts of a control-plane report (those with data). */
export function controlChartSpecs(report: ControlReport): ChartSpec[] {
  const sum = report.summary;
  const charts: (ChartSpec | null)[] = [];

  const create = sum.filter((s) => s.scenario === 'lifecycle' && s.phase === 'create');
  const sizes = [...new Set(create.map((s) => s.n))].sort((a, b) => a - b);
  charts.push(pointsWithRange(report, 'create',
    'Create (+up) per device at each lifecycle size N (µs per device, log scale; median, bar = min–max over repetitions)',
    'devices created (N)', 'µs / device', create.map((s) => point(s, `N=${s.n}`)), sizes.map((n) => `N=${n}`), true));

  // Whole requests, in ms: each is one RTM_DELLINK however many devices it removes.
  const groupLabel = (s: SummaryRow): string =>
    s.scenario === 'teardown' ? `teardown, ${s.n} devices` : s.scenario === 'scaling' ? `scaling, all ${s.n}` : `lifecycle rest, ${s.n}`;
  const deletes = sum.filter((s) => s.phase === 'delete-group' || s.phase === 'delete-rest-group');
  charts.push(pointsWithRange(report, 'delete-group',
    'Delete by group: one request removing a whole group (ms for the request; median, bar = min–max)',
    null, 'ms total', deletes.map((s) => point(s, groupLabel(s))), [...new Set(deletes.map(groupLabel))], false));

  // Scaling: cost per device just below each checkpoint, as the namespace fills.
  const windows = sum.filter((s) => s.scenario === 'scaling' && s.phase === 'create-window' && s.devices !== undefined);
  if (windows.length) {
    const values = windows.map((s) => ({ ...point(s, `${s.devices! - s.n + 1}–${s.devices}`), devices: s.devices! }));
    charts.push({
      id: 'scaling',
      title: 'Scaling: create (+up) per device in the window just below each device count (µs per device; median, bar = min–max)',
      spec: {
        $schema: VEGA_LITE_SCHEMA,
        data: { values },
        width: 420,
        height: 260,
        encoding: {
          x: { field: 'devices', type: 'quantitative', title: 'macvtaps in the namespace after the window', scale: { zero: false } },
          color: colorOf(report),
          tooltip: [{ field: 'config' }, { field: 'at', title: 'window' }, { field: 'median' }, { field: 'lo' }, { field: 'hi' }],
        },
        layer: [
          { mark: { type: 'rule', strokeWidth: 2 }, encoding: { y: { field: 'lo', type: 'quantitative', title: 'µs / device' }, y2: { field: 'hi' } } },
          { mark: { type: 'line', point: { filled: true, size: 50 } }, encoding: { y: { field: 'median', type: 'quantitative' } } },
        ],
      } as TopLevelSpec,
    });
  }

  const getlinkLabel = (s: SummaryRow): string => {
    switch (s.phase) {
      case 'getlink': return 'in sequence';
      case 'getlink-sync': return 'getLinkSync';
      case 'getlink-raw': return 'C loop (floor)';
      default: return `${report.options.parallelDepth} in flight`;
    }
  };
  const getlink = sum.filter((s) => s.scenario === 'getlink');
  charts.push(pointsWithRange(report, 'getlink',
    'getLink(lo): cost per call — in sequence, several in flight, the blocking getLinkSync, and the same request in a C loop (µs per call, log scale; median, bar = min–max)',
    null, 'µs / call', getlink.map((s) => point(s, getlinkLabel(s))), [...new Set(getlink.map(getlinkLabel))], true));

  // Ratios per repetition pair. A ratio at or below 0 has no place on a log axis (left to the table); an interval
  // end at 0 is drawn from 1/100 of the median, as in the datapath report.
  const rowLabel = (s: SummaryRow): string => {
    switch (s.phase) {
      case 'create': return `create+up, N=${s.n}`;
      case 'delete': return `delete 1 by 1, ${s.n}`;
      case 'delete-rest-group': return `lifecycle rest by group, ${s.n}`;
      case 'delete-group': return s.scenario === 'teardown' ? `teardown by group, ${s.n}` : `scaling: all ${s.n} by group`;
      case 'create-window': return `scaling window ${s.devices! - s.n + 1}–${s.devices}`;
      case 'getlink': return 'getLink(lo)';
      case 'getlink-par': return `getLink(lo) ×${report.options.parallelDepth}`;
      case 'getlink-sync': return 'getLinkSync(lo)';
      case 'getlink-raw': return 'RTM_GETLINK lo in C';
      default: return `${s.phase}, ${s.n}`;
    }
  };
  const ratioRows = sum.filter((s) => s.vsBatch && s.vsBatch.median > 0);
  if (ratioRows.length) {
    const values = ratioRows.map((s) => ({
      config: CONFIG_LABELS[s.config],
      row: rowLabel(s),
      median: s.vsBatch!.median,
      lo: Math.max(s.vsBatch!.min, s.vsBatch!.median / 100),
      hi: s.vsBatch!.max,
      text: `${num(s.vsBatch!.median)}×`,
    }));
    const rowEnc = {
      y: { field: 'row', type: 'nominal', title: null, sort: [...new Set(values.map((v) => v.row))], axis: { labelLimit: 0 } },
      yOffset: { field: 'config', type: 'nominal', sort: ranLabels(report) },
      color: colorOf(report),
    };
    charts.push({
      id: 'ratios',
      title: 'Ratio to ip -batch per repetition pair (log scale; median, bar = min–max; lower is faster, dashed line = ip -batch)',
      spec: {
        $schema: VEGA_LITE_SCHEMA,
        data: { values },
        width: 460,
        // With yOffset the step is that of one configuration's band inside a row.
        height: { step: 9 },
        layer: [
          { mark: { type: 'rule', strokeWidth: 2 }, encoding: { ...rowEnc, x: { field: 'lo', type: 'quantitative', scale: { type: 'log' }, title: '÷ ip -batch' }, x2: { field: 'hi' } } },
          { mark: { type: 'point', filled: true }, encoding: { ...rowEnc, x: { field: 'median', type: 'quantitative' }, tooltip: [{ field: 'config' }, { field: 'row' }, { field: 'text', title: 'median' }] } },
          // ip -batch itself: a vertical line at 1 spanning every row.
          { mark: { type: 'rule', color: 'gray', strokeDash: [3, 3] }, encoding: { x: { datum: 1 } } },
        ],
      } as TopLevelSpec,
    });
  }
  return charts.filter((c): c is ChartSpec => c !== null);
}

/** The whole HTML page of a control-plane report: header facts, the charts, the printed report with its notes. */
export async function renderControlHtml(report: ControlReport): Promise<string> {
  const h = report.host;
  const o = report.options;
  return renderPage({
    title: 'macvtap control-plane benchmark',
    facts: [
      { term: 'host', text: `${h.kernel} · ${h.cpu} · ${h.vcpus} vCPUs · node ${h.node}` },
      { term: 'tools', text: `${h.iproute2}${h.netlinkPackage ? ` · npm netlink ${h.netlinkPackage}` : ''}` },
      { term: 'command', text: report.command, code: true },
      { term: 'run', text: `${report.startedAt}, ${report.durationS.toFixed(0)} s, ${o.reps} repetition${o.reps === 1 ? '' : 's'}, configurations ${o.configs.join(', ')}` },
      ...report.unavailable.map((u) => ({ term: `unavailable: ${CONFIG_LABELS[u.id]}`, text: u.reason })),
    ],
    charts: controlChartSpecs(report),
    text: formatControlReport(report),
  });
}
