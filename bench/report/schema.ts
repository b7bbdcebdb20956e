/**
 * What every benchmark report's schema shares: a summary of repetitions with its interval (report/stats.ts's
 * `Summary`), the target rows a run is judged by, and the facts about the host it ran on. Each benchmark's own
 * schema.ts builds on these.
 */
import { cpus, release } from 'node:os';
import { z } from 'zod';

const num = z.number().finite();

/** An order-statistic interval and the coverage it really reaches (`Interval` of report/stats.ts). */
export const IntervalSchema = z.object({ lo: num, hi: num, level: num.min(0).max(1) });

/** A set of repetitions summarised (`Summary` of report/stats.ts). */
export const StatsSchema = z.object({
  n: z.number().int().positive(),
  median: num,
  mean: num,
  min: num,
  max: num,
  ci: IntervalSchema,
});

/** One of the benchmark's targets, as this run measured it. */
export const TargetSchema = z.object({
  name: z.string(),
  target: z.string(),
  value: z.string(),
  /** `null` when the run has no data for it (a configuration missing or a scenario not run). */
  met: z.boolean().nullable(),
});
/** A target row. */
export type Target = z.infer<typeof TargetSchema>;

/** The host every report names: kernel, CPU model, vCPUs, Node. */
export const HostSchema = z.object({
  kernel: z.string(),
  cpu: z.string(),
  vcpus: z.number().int().positive(),
  node: z.string(),
});
/** The host facts of {@link HostSchema}. */
export type Host = z.infer<typeof HostSchema>;

/** This host's {@link Host} facts. */
export function hostFacts(): Host {
  const list = cpus();
  return { kernel: `Linux ${release()}`, cpu: list[0]?.model.trim() ?? 'unknown', vcpus: Math.max(1, list.length), node: process.version };
}
