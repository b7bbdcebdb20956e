/**
 * The anti-spoofing matrix as text: rows = attachments, columns = cases, a legend and what each case sends, then the
 * notes. Printed by `macvtap bench security`, and under the datapath benchmark's tables when it embeds the matrix.
 */
import { table } from '../report/text.js';
import { CASE_GROUPS, CASES, CELLS, type CaseResult, type SecurityMatrix, type SecurityReport } from './schema.js';

/** One line per case: what it sends and what the cell says (the column headings are these ids). */
export const CASE_TEXT: Record<(typeof CASES)[number], string> = {
  'legitimate': "A → peer with its own MAC and IP (the control); reply: peer → A",
  'forged-mac': "A → peer with a source MAC nobody owns; reply: peer → that MAC",
  'forged-ip': "A → peer with its own MAC and a source IP that is not its own; reply: peer → A's MAC, the forged IP",
  'stolen-mac': "A → peer with B's MAC as its source; reply: peer → B's MAC (reply back = A now gets B's traffic)",
  'to-guest': 'A → B (B\'s MAC and IP); reply: B → A',
  'guest-bcast': 'A → broadcast: does B get it (ARP between the two guests needs it)',
  'snoop-guest': "peer → B's MAC: does A see it (delivered = A sees B's unicast)",
  'snoop-unknown': 'peer → a MAC nobody owns: does A see it (unknown-unicast flooding)',
  'promisc-guest': "snoop-guest after A's host-side device was set promiscuous (libvirt trustGuestRxFilters)",
  'promisc-unknown': "snoop-unknown after A's host-side device was set promiscuous",
  'legitimate6': "A → peer, UDP/IPv6 with its own MAC and IPv6 address; reply: peer → A",
  'forged-ip6': "A → peer, UDP/IPv6 with its own MAC and an IPv6 source that is not its own; reply: peer → A's MAC, the forged address",
  'arp-legit': "A → broadcast: gratuitous ARP reply, A's own IP at A's own MAC (the control)",
  'arp-forged-ip': "A → broadcast: gratuitous ARP reply claiming the peer's IP at A's MAC (poisoning the gateway)",
  'arp-forged-mac': "A → broadcast: gratuitous ARP reply for A's IP with a sender MAC nobody owns (Ethernet source: A's own)",
  'na-legit': "A → ff02::1: neighbour advertisement for A's own IPv6 address at A's MAC (the control)",
  'na-forged-target': "A → ff02::1: neighbour advertisement for the peer's IPv6 address at A's MAC",
  'na-forged-lladdr': "A → ff02::1: neighbour advertisement for A's own address with a target link-layer address nobody owns",
  'router-advert': "A → ff02::1: router advertisement from A's link-local address (a rogue router)",
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
  const out = [
    `Anti-spoofing matrix: guest A (under test) writes to its tap fd; B is a second guest on the same lower device / bridge`,
    `(${m.options.attempts} attempts per case, ${m.options.waitMs} ms wait; ${m.durationS.toFixed(1)} s)`,
  ];
  // Two tables of at most ten columns each: one would not fit a terminal.
  for (const g of CASE_GROUPS) {
    const body = m.rows.map((r) => [r.label, ...g.cases.map((id) => {
      const c = r.cases.find((x) => x.case === id);
      return c ? cellText(c) : 'n/a';
    })]);
    out.push('', `${g.title}:`, table(['attachment', ...g.cases], body, new Set()));
  }
  out.push('');
  for (const r of m.rows) if (r.unavailable) out.push(`n/a ${r.label}: ${r.unavailable}`);
  const secured = m.rows.filter((r) => r.portSecurity);
  if (secured.length > 0) {
    out.push("Port security drops counted by nftables on guest A's device (packets by reason):");
    for (const r of secured) {
      const d = Object.entries(r.portSecurity!.dropped).filter(([, c]) => c.packets > 0).map(([k, c]) => `${k} ${c.packets}`);
      out.push(`  ${r.label.padEnd(24)}  ${d.length > 0 ? d.join(', ') : 'none'}`);
    }
  }
  out.push('Legend:');
  for (const c of CELLS) out.push(`  ${c.padEnd(10)}  ${m.legend[c]}`);
  out.push('Cases:');
  for (const id of CASES) out.push(`  ${id.padEnd(16)}  ${CASE_TEXT[id]}`);
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
