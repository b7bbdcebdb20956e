/**
 * The "TCG guest" result (what `macvtap bench guest --json FILE` writes, and what a datapath report embeds under
 * `tcgGuest`): its zod schema, from which its types come, so the result is validated like the rest of a report.
 */
import { z } from 'zod';

/** The label of every result of the guest benchmark, so nobody reads them as KVM numbers. */
export const TCG_GUEST_LABEL = 'TCG guest';

/** The two attachments compared. */
export const GUEST_PATHS = ['macvtap', 'tap+bridge'] as const;
/** One attachment of the guest's NIC. */
export type GuestPath = (typeof GUEST_PATHS)[number];

const num = z.number().finite();

/** One boot's measurements. */
export const GuestBootSchema = z.object({
  /** Host time from QEMU's spawn to the console line of the guest's first ping reply, ms (±25 ms polling). */
  bootToFirstPingMs: num.nonnegative(),
  /** The guest's `/proc/uptime` when that reply came, s (kernel start → first reply, without QEMU's own start). */
  guestUptimeAtFirstPingS: num.nonnegative(),
  /** Guest → peer: busybox ping summary inside the guest. */
  guestPing: z.object({ sent: z.number().int(), received: z.number().int(), minMs: num.nullable(), avgMs: num.nullable(), maxMs: num.nullable() }),
  /** Peer → guest: each reply's round trip, ms. */
  peerRttMs: z.array(num.nonnegative()),
  /** Peer → guest echo requests sent. */
  peerSent: z.number().int().nonnegative(),
});
/** One boot's measurements. */
export type GuestBoot = z.infer<typeof GuestBootSchema>;

/** The summary of one path's boots. */
export const GuestSummarySchema = z.object({
  bootToFirstPingMsMedian: num,
  guestUptimeAtFirstPingSMedian: num,
  /** Median and 90th percentile over every peer → guest round trip of every boot. */
  peerRttMsP50: num,
  peerRttMsP90: num,
  /** Lost echo requests over all boots, both directions. */
  lost: z.number().int().nonnegative(),
});
/** The summary of one path's boots. */
export type GuestSummary = z.infer<typeof GuestSummarySchema>;

/** All boots of one path plus their summary. */
export const GuestPathResultSchema = z.object({
  path: z.enum(GUEST_PATHS),
  boots: z.array(GuestBootSchema),
  summary: GuestSummarySchema,
});
/** All boots of one path plus their summary. */
export type GuestPathResult = z.infer<typeof GuestPathResultSchema>;

/** The whole result: plain data, JSON-serializable. */
export const TcgGuestResultSchema = z.object({
  label: z.literal(TCG_GUEST_LABEL),
  /** Why these numbers are what they are. */
  note: z.string(),
  startedAt: z.string(),
  durationMs: num.nonnegative(),
  host: z.object({ kernel: z.string(), cpus: z.number().int().positive(), qemu: z.string() }),
  guest: z.object({
    kernelRelease: z.string(), inputs: z.array(z.string()), accel: z.literal('tcg'), memoryMiB: z.number().int().positive(),
    smp: z.number().int().positive(), nic: z.literal('virtio-net-pci, vhost=off'),
  }),
  options: z.object({ boots: z.number().int().positive(), pings: z.number().int().positive(), intervalS: num.positive() }),
  /** CPU placement: nothing is pinned (TCG's vCPU thread and the peer float over the host's CPUs). */
  placement: z.literal('unpinned'),
  paths: z.array(GuestPathResultSchema),
});
/** The whole result. */
export type TcgGuestResult = z.infer<typeof TcgGuestResultSchema>;
