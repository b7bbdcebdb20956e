/** The "TCG guest" row as a chart: on the datapath report's HTML page, and on its own page (`macvtap bench guest --html`). */
import type { TopLevelSpec } from 'vega-lite';
import { renderPage, VEGA_LITE_SCHEMA, type ChartSpec } from '../report/html.js';
import { formatGuestReport } from './report.js';
import type { TcgGuestResult } from './schema.js';

/**
 * Per path, every boot's boot-to-first-ping time and every peer → guest round trip (points), with the medians the
 * table prints (ticks): two panels, one per measure.
 */
export function tcgGuestChart(r: TcgGuestResult): ChartSpec {
  const values = r.paths.flatMap((p) => [
    ...p.boots.map((b) => ({ path: p.path, measure: 'boot → first ping (ms)', value: b.bootToFirstPingMs })),
    ...p.boots.flatMap((b) => b.peerRttMs.map((ms) => ({ path: p.path, measure: 'peer → guest RTT (ms)', value: ms }))),
  ]);
  return {
    id: 'tcg-guest',
    title: 'TCG guest (QEMU software emulation, not KVM): the same guest on macvtap and on tap+bridge — every boot and every round trip',
    spec: {
      $schema: VEGA_LITE_SCHEMA,
      data: { values },
      facet: { column: { field: 'measure', type: 'nominal', title: null } },
      resolve: { scale: { x: 'independent' } },
      spec: {
        width: 300,
        height: { step: 40 },
        encoding: { y: { field: 'path', type: 'nominal', title: null } },
        layer: [
          { mark: { type: 'point', opacity: 0.5 }, encoding: { x: { field: 'value', type: 'quantitative', title: null } } },
          { mark: { type: 'tick', thickness: 3, color: 'black' }, encoding: { x: { aggregate: 'median', field: 'value', type: 'quantitative' } } },
        ],
      },
    } as TopLevelSpec,
  };
}

/** The standalone page of `macvtap bench guest --html FILE`. */
export async function renderGuestHtml(r: TcgGuestResult): Promise<string> {
  return renderPage({
    title: 'macvtap TCG guest: macvtap vs tap+bridge under QEMU TCG',
    facts: [
      { term: 'host', text: `Linux ${r.host.kernel} · ${r.host.cpus} CPUs · ${r.host.qemu}` },
      { term: 'guest', text: `${r.guest.kernelRelease}, ${r.guest.smp} vCPU, ${r.guest.memoryMiB} MiB, ${r.guest.nic}, accel ${r.guest.accel}` },
      { term: 'run', text: `${r.startedAt}, ${(r.durationMs / 1000).toFixed(0)} s, ${r.options.boots} boots per path, ${r.options.pings} pings per boot` },
    ],
    charts: [tcgGuestChart(r)],
    text: formatGuestReport(r),
  });
}
