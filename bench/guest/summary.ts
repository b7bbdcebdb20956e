/**
 * Turns one path's boots into its summary: medians of the boot times, percentiles over every peer → guest round trip
 * of every boot, and the echo requests lost in both directions. Nearest-rank quantiles, so every figure is a time some
 * boot or ping really took.
 */
import { nearestRank } from '../report/stats.js';
import type { GuestBoot, GuestSummary } from './schema.js';

/** The summary of `boots` (NaN where there is nothing to take a quantile of). */
export function summarizeGuestPath(boots: readonly GuestBoot[]): GuestSummary {
  const q = (xs: number[], p: number): number => (xs.length ? nearestRank(xs, p) : NaN);
  const rtts = boots.flatMap((b) => b.peerRttMs);
  return {
    bootToFirstPingMsMedian: q(boots.map((b) => b.bootToFirstPingMs), 0.5),
    guestUptimeAtFirstPingSMedian: q(boots.map((b) => b.guestUptimeAtFirstPingS), 0.5),
    peerRttMsP50: q(rtts, 0.5),
    peerRttMsP90: q(rtts, 0.9),
    lost: boots.reduce((n, b) => n + (b.guestPing.sent - b.guestPing.received) + (b.peerSent - b.peerRttMs.length), 0),
  };
}
