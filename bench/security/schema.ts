/**
 * The anti-spoofing matrix and its JSON report (`macvtap bench security --json FILE`, schema
 * `macvtap-bench-security/1`); the datapath report embeds the same matrix under `security`. Apart from the probe's
 * code so the report side (tables, HTML, `--compare`) loads without the library.
 */
import { z } from 'zod';
import { HostSchema } from '../report/schema.js';

/**
 * Schema id of the standalone report; bump the number on any incompatible change. 2: the `+portsec` rows, the
 * legitimate, IPv6, ARP and neighbour discovery cases, `portSecurity` per row, `frame.kind`.
 */
export const SECURITY_SCHEMA_ID = 'macvtap-bench-security/2';

/**
 * Attachments probed, in order (see testbed/topology.ts for how each is built). `…+portsec` is the macvtap attachment
 * beside it with the library's `applyPortSecurity` on both guests' macvtaps (anti-spoofing only, no security group
 * rules; see run.ts).
 */
export const ATTACHMENTS = [
  'macvtap-bridge', 'macvtap-bridge+portsec', 'macvtap-vepa', 'macvtap-vepa+portsec', 'macvtap-private',
  'macvtap-private+portsec', 'tap+linuxbridge', 'tap+ovs',
] as const;
/** One attachment. */
export type Attachment = (typeof ATTACHMENTS)[number];
/** The attachments with port security, and the attachment each is built as. */
export const PORTSEC_BASE = {
  'macvtap-bridge+portsec': 'macvtap-bridge',
  'macvtap-vepa+portsec': 'macvtap-vepa',
  'macvtap-private+portsec': 'macvtap-private',
} as const satisfies Partial<Record<Attachment, Attachment>>;
/** An attachment with port security. */
export type PortsecAttachment = keyof typeof PORTSEC_BASE;
/** Whether `a` is one of the `+portsec` rows. */
export function isPortsec(a: Attachment): a is PortsecAttachment {
  return Object.hasOwn(PORTSEC_BASE, a);
}

/**
 * The cases, each sent from (or aimed past) guest A, the guest under test; guest B is a second guest on the same lower
 * device or bridge:
 * - `forged-mac`: A → peer with a source MAC nobody owns (correct IP); reply: peer → that MAC.
 * - `forged-ip`: A → peer with its own MAC and an IP that is not its own; reply: peer → A's MAC, the forged IP.
 * - `stolen-mac`: A → peer with B's MAC as source; reply: peer → B's MAC — does it now reach A (MAC hijack)?
 * - `to-guest`: A → B (B's MAC and IP); reply: B → A.
 * - `guest-bcast`: A → broadcast; does B receive it (ARP between the guests needs this)?
 * - `snoop-guest`: peer → B's MAC; does A's queue see it?
 * - `snoop-unknown`: peer → a MAC nobody owns (unknown unicast); does A's queue see it?
 * - `promisc-guest`, `promisc-unknown`: the same two after A's host-side device is put in promiscuous mode (what
 *   libvirt does when a guest with `trustGuestRxFilters='yes'` turns promiscuous mode on).
 * - `legitimate`: A → peer with its own MAC and IP (the control: what every row must let through); reply: peer → A.
 *
 * IPv6, ARP and neighbour discovery, all A → peer, all seen (or not) on the peer's wire:
 * - `legitimate6`: UDP/IPv6 with A's own MAC and IPv6 address; reply: peer → A.
 * - `forged-ip6`: UDP/IPv6 with A's MAC and an IPv6 source that is not A's; reply: peer → A's MAC, the forged address.
 * - `arp-legit`: a gratuitous ARP reply announcing A's own IP at A's own MAC (the control).
 * - `arp-forged-ip`: a gratuitous ARP reply claiming the peer's IP at A's MAC (ARP poisoning of the gateway).
 * - `arp-forged-mac`: a gratuitous ARP reply for A's IP whose sender MAC (in the ARP body) is one nobody owns; the
 *   Ethernet source is A's own MAC.
 * - `na-legit`: an unsolicited neighbour advertisement for A's own IPv6 address with A's MAC as link-layer address.
 * - `na-forged-target`: the same advertisement for the peer's IPv6 address (the IPv6 form of ARP poisoning).
 * - `na-forged-lladdr`: an advertisement for A's own address whose target link-layer address option is a MAC nobody
 *   owns.
 * - `router-advert`: a router advertisement from A's link-local address (a rogue router for every host on the wire).
 */
export const CASES = [
  'legitimate', 'forged-mac', 'forged-ip', 'stolen-mac', 'to-guest', 'guest-bcast', 'snoop-guest', 'snoop-unknown',
  'promisc-guest', 'promisc-unknown',
  'legitimate6', 'forged-ip6', 'arp-legit', 'arp-forged-ip', 'arp-forged-mac', 'na-legit', 'na-forged-target',
  'na-forged-lladdr', 'router-advert',
] as const;
/** One case. */
export type CaseId = (typeof CASES)[number];

/** The cases as the text report and the README group them: one table each. */
export const CASE_GROUPS: readonly { title: string; cases: readonly CaseId[] }[] = [
  { title: 'IPv4 unicast, guest to guest, snooping', cases: CASES.slice(0, 10) },
  { title: 'IPv6, ARP and neighbour discovery (A → peer)', cases: CASES.slice(10) },
];

/** Cases where the probe also sends a reply to the address the frame claimed and checks A receives it. */
export const REPLY_CASES: readonly CaseId[] = ['legitimate', 'forged-mac', 'forged-ip', 'stolen-mac', 'to-guest', 'legitimate6', 'forged-ip6'];

/**
 * A cell: `reply back` the frame arrived and the reply to its (claimed) source reached guest A; `delivered` it
 * arrived (for reply cases: the reply did not come back); `dropped` it never arrived in any attempt; `n/a` the
 * attachment could not be built here.
 */
export const CELLS = ['reply back', 'delivered', 'dropped', 'n/a'] as const;
/** One cell value. */
export type Cell = (typeof CELLS)[number];

/** The legend printed under the matrix and stored with it. */
export const LEGEND: Record<Cell, string> = {
  'reply back': 'the frame reached its target and the reply addressed to its claimed source reached guest A',
  'delivered': 'the frame reached its target (snoop/promisc: guest A saw a frame meant for someone else); no reply came back to A',
  'dropped': 'the frame never reached its target in any attempt',
  'n/a': 'the attachment could not be built on this host (see reason)',
};

const count = z.number().int().nonnegative();

/** One case on one attachment: what was sent, where it was looked for, what arrived. */
export const CaseResultSchema = z.object({
  case: z.enum(CASES),
  cell: z.enum(CELLS),
  /** Where the frame was captured: `peer` (AF_PACKET on the peer's wire), `guest-b`, `guest-a` (A's tap queue). */
  target: z.enum(['peer', 'guest-a', 'guest-b']),
  /** Frames sent (attempts), and how many of them arrived at the target. */
  sent: count,
  reached: count,
  /** Reply cases: replies sent and replies that reached guest A; null for cases without a reply. */
  repliesSent: count.nullable(),
  repliesBack: count.nullable(),
  /**
   * What the frame claimed, first attempt: Ethernet source and destination; for UDP the IP addresses, for ARP the
   * sender and target IP of its body, for neighbour/router advertisements the IPv6 header's addresses.
   */
  frame: z.object({
    srcMac: z.string(), dstMac: z.string(), srcIp: z.string(), dstIp: z.string(),
    /** What the frame is (absent in schema 1 reports: UDP/IPv4). */
    kind: z.enum(['udp', 'udp6', 'arp', 'nd-na', 'nd-ra']).optional(),
    /** ARP: the sender MAC of the body; ND: the link-layer address option. */
    lladdr: z.string().optional(),
    /** Neighbour advertisement: its target address. */
    target: z.string().optional(),
  }),
});
/** One case's result. */
export type CaseResult = z.infer<typeof CaseResultSchema>;

const GuestSchema = z.object({ mac: z.string(), ip: z.string(), ip6: z.string().optional(), device: z.string() });

/** A drop counter of port security: packets and bytes. */
const DropSchema = z.object({ packets: count, bytes: count });

/** What the `+portsec` rows applied, and what nftables counted, read back with `getPortSecurity` after the probe. */
export const PortSecurityRowSchema = z.object({
  /** The policy applied to guest A's device (B's is the same with its own addresses). */
  policy: z.object({ mac: z.string(), ips: z.array(z.string()), rules: z.literal('none') }),
  /** The nftables table. */
  table: z.string(),
  /** Guest A's drop counters by reason (`spoofed-mac`, `spoofed-arp`, `spoofed-ipv4`, …). */
  dropped: z.record(z.string(), DropSchema),
});
/** A `+portsec` row's port security. */
export type PortSecurityRow = z.infer<typeof PortSecurityRowSchema>;

/** One attachment's row. */
export const AttachmentRowSchema = z.object({
  attachment: z.enum(ATTACHMENTS),
  /** The attachment, or for OVS the datapath really used (`ovs-system` / `ovs-netdev`). */
  label: z.string(),
  /** Guest A's and B's MACs as the attachment gave them (macvtaps: the device's own MAC). */
  guestA: GuestSchema.nullable(),
  guestB: GuestSchema.nullable(),
  /** `+portsec` rows: the policy and guest A's drop counters; null (or absent, schema 1) for the others. */
  portSecurity: PortSecurityRowSchema.nullable().optional(),
  /** Why the row is `n/a`, else null. */
  unavailable: z.string().nullable(),
  cases: z.array(CaseResultSchema),
  /** Wall time of this attachment's build, probe and teardown, s. */
  durationS: z.number().nonnegative(),
});
/** One attachment's row. */
export type AttachmentRow = z.infer<typeof AttachmentRowSchema>;

/** The probe's options as run. */
export const SecurityOptionsSchema = z.object({
  attachments: z.array(z.enum(ATTACHMENTS)).min(1),
  /** Frames per case (each a distinct marker); a cell is `dropped` only when none of them arrived. */
  attempts: z.number().int().min(1).max(20),
  /** How long to wait for frames that do not come, ms. */
  waitMs: z.number().int().min(10).max(10_000),
});
/** The probe's options. */
export type SecurityOptions = z.infer<typeof SecurityOptionsSchema>;

/** The matrix: what the datapath report embeds and the standalone report carries. */
export const SecurityMatrixSchema = z.object({
  options: SecurityOptionsSchema,
  kernel: z.string(),
  /** OVS version and datapath when the tap+ovs row ran. */
  ovs: z.object({ version: z.string(), datapath: z.enum(['system', 'netdev']) }).nullable(),
  namespaces: z.array(z.string()),
  startedAt: z.string(),
  durationS: z.number().nonnegative(),
  legend: z.record(z.enum(CELLS), z.string()),
  notes: z.array(z.string()),
  rows: z.array(AttachmentRowSchema),
});
/** The matrix. */
export type SecurityMatrix = z.infer<typeof SecurityMatrixSchema>;

/** The standalone report of `macvtap bench security --json FILE`. */
export const SecurityReportSchema = SecurityMatrixSchema.extend({
  schema: z.literal(SECURITY_SCHEMA_ID),
  command: z.string(),
  argv: z.array(z.string()),
  host: HostSchema,
});
/** The standalone report. */
export type SecurityReport = z.infer<typeof SecurityReportSchema>;

/** The cell a case's counts make. */
export function cellOf(reached: number, repliesBack: number | null): Cell {
  if (reached === 0) return 'dropped';
  return repliesBack !== null && repliesBack > 0 ? 'reply back' : 'delivered';
}
