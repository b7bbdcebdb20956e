/**
 * The anti-spoofing matrix and its JSON report (`macvtap bench security --json FILE`, schema
 * `macvtap-bench-security/1`); the datapath report embeds the same matrix under `security`. Apart from the probe's
 * code so the report side (tables, HTML, `--compare`) loads without the library.
 */
import { z } from 'zod';
import { HostSchema } from '../report/schema.js';

/** Schema id of the standalone report; bump the number on any incompatible change. */
export const SECURITY_SCHEMA_ID = 'macvtap-bench-security/1';

/** Attachments probed, in order (see testbed/topology.ts for how each is built). */
export const ATTACHMENTS = ['macvtap-bridge', 'macvtap-vepa', 'macvtap-private', 'tap+linuxbridge', 'tap+ovs'] as const;
/** One attachment. */
export type Attachment = (typeof ATTACHMENTS)[number];

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
 */
export const CASES = [
  'forged-mac', 'forged-ip', 'stolen-mac', 'to-guest', 'guest-bcast', 'snoop-guest', 'snoop-unknown', 'promisc-guest',
  'promisc-unknown',
] as const;
/** One case. */
export type CaseId = (typeof CASES)[number];

/** Cases where the probe also sends a reply to the address the frame claimed and checks A receives it. */
export const REPLY_CASES: readonly CaseId[] = ['forged-mac', 'forged-ip', 'stolen-mac', 'to-guest'];

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
  /** What the frame claimed: source and destination addresses of the first attempt. */
  frame: z.object({ srcMac: z.string(), dstMac: z.string(), srcIp: z.string(), dstIp: z.string() }),
});
/** One case's result. */
export type CaseResult = z.infer<typeof CaseResultSchema>;

/** One attachment's row. */
export const AttachmentRowSchema = z.object({
  attachment: z.enum(ATTACHMENTS),
  /** The attachment, or for OVS the datapath really used (`ovs-system` / `ovs-netdev`). */
  label: z.string(),
  /** Guest A's and B's MACs as the attachment gave them (macvtaps: the device's own MAC). */
  guestA: z.object({ mac: z.string(), ip: z.string(), device: z.string() }).nullable(),
  guestB: z.object({ mac: z.string(), ip: z.string(), device: z.string() }).nullable(),
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
