/**
 * The anti-spoofing matrix as text: rows = attachments, columns = cases, a legend and what each case sends, then the
 * notes. Printed by `macvtap bench security`, and under the datapath benchmark's tables when it embeds the matrix.
 */
import { table } from '../report/text.js';
import { CASES, CELLS, type CaseResult, type SecurityMatrix, type SecurityReport } from './schema.js';

/** One line per case: what it sends and what the cell says (the column headings are these ids). */
export const CASE_TEXT: Record<(typeof CASES)[number], string> = {
  'forged-mac': "A → peer with a source MAC nobody owns; reply: peer → that MAC",
  'forged-ip': "A → peer with its own MAC and a source IP that is not its own; reply: peer → A's MAC, the forged IP",
  'stolen-mac': "A → peer with B's MAC as its source; reply: peer → B's MAC (reply back = A now gets B's traffic)",
  'to-guest': 'A → B (B\'s MAC and IP); reply: B → A',
  'guest-bcast': 'A → broadcast: does B get it (ARP between the two guests needs it)',
  'snoop-guest': "peer → B's MAC: does A see it (delivered = A sees B's unicast)",
  'snoop-unknown': 'peer → a MAC nobody owns: does A see it (unknown-unicast flooding)',
  'promisc-guest': "snoop-guest after A's host-side device was set promiscuous (libvirt trustGuestRxFilters)",
  'promisc-unknown': "snoop-unknown after A's host-side device was set promiscuous",
};

/** A cell's text: the cell, with the count when only some attempts arrived (e.g. `delivered 2/3`). */
export function cellText(c: CaseResult): string {
  const partial = c.reached > 0 && c.reached < c.sent ? ` ${c.reached}/${c.sent}` : '';
  const replies = c.cell === 'reply back' && c.repliesBack !== null && c.repliesSent !== null && c.repliesBack < c.repliesSent
    ? ` ${c.repliesBack}/${c.repliesSent}` : '';
  return `${c.cell}${partial}${replies}`;
}

/** The matrix, legend, case descriptions and notes (no header: the datapath report prints this under its own). */
export function formatMatrix(m: SecurityMatrix): string {
  const head = ['attachment', ...CASES];
  const body = m.rows.map((r) => [r.label, ...CASES.map((id) => {
    const c = r.cases.find((x) => x.case === id);
    return c ? cellText(c) : 'n/a';
  })]);
  const out = [
    `Anti-spoofing matrix: guest A (under test) writes to its tap fd; B is a second guest on the same lower device / bridge`,
    `(${m.options.attempts} attempts per case, ${m.options.waitMs} ms wait; ${m.durationS.toFixed(1)} s)`,
    '',
    table(head, body, new Set()),
    '',
  ];
  for (const r of m.rows) if (r.unavailable) out.push(`n/a ${r.label}: ${r.unavailable}`);
  out.push('Legend:');
  for (const c of CELLS) out.push(`  ${c.padEnd(10)}  ${m.legend[c]}`);
  out.push('Cases:');
  for (const id of CASES) out.push(`  ${id.padEnd(15)}  ${CASE_TEXT[id]}`);
  out.push('Notes:');
  for (const n of m.notes) out.push(`  - ${n}`);
  return out.join('\n') + '\n';
}

/** The standalone report (`macvtap bench security`): a header, then {@link formatMatrix}. */
export function formatSecurityReport(r: SecurityReport): string {
  return [
    `macvtap anti-spoofing probe (${r.schema})`,
    `host     ${r.host.kernel} · ${r.host.cpu} · ${r.host.vcpus} vCPUs · node ${r.host.node}` +
      (r.ovs ? ` · Open vSwitch ${r.ovs.version} (datapath ${r.ovs.datapath})` : ''),
    `command  ${r.command}`,
    '',
    formatMatrix(r),
  ].join('\n');
}
