/**
 * The anti-spoofing matrix in the shared HTML page style: one vega-lite chart (rows = attachments, columns = cases, a
 * coloured cell with its text), for the standalone report and as an extra chart of the datapath report.
 */
import { renderPage, VEGA_LITE_SCHEMA, type ChartSpec } from '../report/html.js';
import { CASES, CELLS, type SecurityMatrix, type SecurityReport } from './schema.js';
import { cellText, formatSecurityReport } from './report.js';

/** Colours per cell: red where a spoof or a snoop worked, amber where a frame got out but nothing came back. */
const COLOURS: Record<(typeof CELLS)[number], string> = {
  'reply back': '#d6604d',
  'delivered': '#f4a582',
  'dropped': '#92c5de',
  'n/a': '#e0e0e0',
};

/** The matrix as a chart (`data-chart="security-matrix"`). */
export function securityChart(m: SecurityMatrix): ChartSpec {
  const values = m.rows.flatMap((r) => CASES.map((id) => {
    const c = r.cases.find((x) => x.case === id);
    return { attachment: r.label, case: id, cell: c ? c.cell : 'n/a', text: c ? cellText(c) : 'n/a' };
  }));
  return {
    id: 'security-matrix',
    title: 'Anti-spoofing: what reaches its target from guest A (rows: attachments; columns: cases)',
    spec: {
      $schema: VEGA_LITE_SCHEMA,
      data: { values },
      width: { step: 84 },
      height: { step: 28 },
      encoding: {
        x: { field: 'case', type: 'nominal', sort: [...CASES], title: null, axis: { orient: 'top', labelAngle: -30 } },
        y: { field: 'attachment', type: 'nominal', sort: m.rows.map((r) => r.label), title: null },
      },
      layer: [
        {
          mark: { type: 'rect', stroke: 'white' },
          encoding: {
            color: {
              field: 'cell', type: 'nominal', title: 'cell',
              scale: { domain: [...CELLS], range: CELLS.map((c) => COLOURS[c]) },
            },
          },
        },
        { mark: { type: 'text', fontSize: 11 }, encoding: { text: { field: 'text', type: 'nominal' } } },
      ],
    },
  };
}

/** The standalone page of `macvtap bench security --html FILE`. */
export async function renderSecurityHtml(r: SecurityReport): Promise<string> {
  return renderPage({
    title: 'macvtap anti-spoofing probe',
    facts: [
      { term: 'host', text: `${r.host.kernel} · ${r.host.cpu} · ${r.host.vcpus} vCPUs · node ${r.host.node}` },
      { term: 'command', text: r.command, code: true },
      { term: 'method', text: `${r.options.attempts} attempts per case, ${r.options.waitMs} ms wait; ${r.durationS.toFixed(1)} s` },
    ],
    charts: [securityChart(r)],
    text: formatSecurityReport(r),
  });
}
