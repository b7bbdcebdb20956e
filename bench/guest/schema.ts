/**
 * The zod schema of a "TCG guest" result ({@link TcgGuestResult} of bench/guest/index.ts), so a datapath report that
 * embeds one is validated like the rest of it.
 */
import { z } from 'zod';

const num = z.number().finite();

const BootSchema = z.object({
  bootToFirstPingMs: num.nonnegative(),
  guestUptimeAtFirstPingS: num.nonnegative(),
  guestPing: z.object({ sent: z.number().int(), received: z.number().int(), minMs: num.nullable(), avgMs: num.nullable(), maxMs: num.nullable() }),
  peerRttMs: z.array(num.nonnegative()),
  peerSent: z.number().int().nonnegative(),
});

/** Schema of `TcgGuestResult`. */
export const TcgGuestResultSchema = z.object({
  label: z.literal('TCG guest'),
  note: z.string(),
  startedAt: z.string(),
  durationMs: num.nonnegative(),
  host: z.object({ kernel: z.string(), cpus: z.number().int().positive(), qemu: z.string() }),
  guest: z.object({
    kernelRelease: z.string(), inputs: z.array(z.string()), accel: z.literal('tcg'), memoryMiB: z.number().int().positive(),
    smp: z.number().int().positive(), nic: z.literal('virtio-net-pci, vhost=off'),
  }),
  options: z.object({ boots: z.number().int().positive(), pings: z.number().int().positive(), intervalS: num.positive() }),
  placement: z.literal('unpinned'),
  paths: z.array(z.object({
    path: z.enum(['macvtap', 'tap+bridge']),
    boots: z.array(BootSchema),
    summary: z.object({
      bootToFirstPingMsMedian: num, guestUptimeAtFirstPingSMedian: num, peerRttMsP50: num, peerRttMsP90: num, lost: z.number().int().nonnegative(),
    }),
  })),
});
