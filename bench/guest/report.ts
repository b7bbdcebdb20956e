/**
 * The "TCG guest" rows as text: one per path, printed by `macvtap bench guest` and under the datapath benchmark's
 * tables when it embeds the row.
 */
import { table } from '../report/text.js';
import { TCG_GUEST_LABEL, type TcgGuestResult } from './schema.js';

/** The "TCG guest" rows as a text table, one per path. */
export function formatTcgGuest(r: TcgGuestResult): string {
  const rows = r.paths.map((p) => [
    `${TCG_GUEST_LABEL}: ${p.path}`, String(p.boots.length), p.summary.bootToFirstPingMsMedian.toFixed(0),
    p.summary.guestUptimeAtFirstPingSMedian.toFixed(2), p.summary.peerRttMsP50.toFixed(3), p.summary.peerRttMsP90.toFixed(3),
    String(p.summary.lost),
  ]);
  const head = ['path', 'boots', 'boot→1st ping ms (median)', 'guest uptime s', 'peer→guest RTT p50 ms', 'p90 ms', 'lost'];
  return table(head, rows, new Set()) + '\n';
}

/** The standalone report (`macvtap bench guest`): the table and the note that says what the numbers are. */
export function formatGuestReport(r: TcgGuestResult): string {
  return `${formatTcgGuest(r)}note: ${r.note}\n`;
}
