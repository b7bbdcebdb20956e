/**
 * The JSON the control-plane benchmark writes with `--json FILE`: schema `macvtap-bench-control/1`. Every raw
 * repetition is kept in `rows`; `summary` and `targets` are derived from them and can be recomputed.
 */
import { z } from 'zod';
import { HostSchema, StatsSchema, TargetSchema } from '../report/schema.js';
import { CONFIG_IDS } from './driver.js';

/** Schema id written into every report; bump the number on any incompatible change. */
export const CONTROL_SCHEMA_ID = 'macvtap-bench-control/1';

/** What a row measured. */
export const SCENARIOS = ['lifecycle', 'teardown', 'scaling', 'getlink'] as const;
/**
 * Phases: `create` (create + up, one request per device), `open-queue` (open one queue of each device, with
 * `TUNSETIFF`), `close-queue` (close those queues; each close waits an RCU grace period), `delete` (one
 * `RTM_DELLINK` per device), `delete-rest-group` (the lifecycle's devices beyond the one-by-one sample, by group),
 * `delete-group` (all of a group in one request), `create-fill` (scaling: devices made to reach the next window,
 * kept for completeness), `create-window` (scaling: the devices just below a checkpoint), `getlink` (sequential
 * `RTM_GETLINK lo`), `getlink-par` (the same with several in flight), `getlink-sync` (the blocking `getLinkSync`),
 * `getlink-raw` (the same request in a C loop: the kernel's round trip, the floor for the native call overhead).
 */
export const PHASES = [
  'create', 'open-queue', 'close-queue', 'delete', 'delete-rest-group', 'delete-group', 'create-fill', 'create-window', 'getlink',
  'getlink-par', 'getlink-sync', 'getlink-raw',
] as const;

const num = z.number().finite();

/** p50/p90/p99/max in µs. */
export const PercentilesSchema = z.object({ p50: num, p90: num, p99: num, max: num });

/** One phase of one configuration in one repetition. */
export const RawRowSchema = z.object({
  scenario: z.enum(SCENARIOS),
  phase: z.enum(PHASES),
  config: z.enum(CONFIG_IDS),
  /** 0-based repetition; -1 never appears (warm-up is not recorded). */
  rep: z.number().int().nonnegative(),
  /** Operations timed in this row: devices, or calls for `getlink*`. */
  n: z.number().int().positive(),
  /** Scaling: macvtaps in the namespace once this window is created (the checkpoint). */
  devices: z.number().int().positive().optional(),
  /** Wall time of the phase, ms. */
  totalMs: num.nonnegative(),
  /**
   * `ip -batch`: the phase timed between marker commands, less the fastest marker-only round trip (no process start
   * or exit), ms. Can come out slightly negative for a phase shorter than the round trip's jitter.
   */
  netMs: num.optional(),
  /** `ip -batch`: `totalMs − netMs`, the process's time outside the phase's commands, ms. */
  startupMs: num.nonnegative().optional(),
  /** Per operation, µs: `(netMs ?? totalMs) · 1000 / n`. */
  perOpUs: num,
  /** In-process configurations: the process's user-mode CPU time per operation, µs (no kernel time in it). */
  userCpuUs: num.nonnegative().optional(),
  /** Per-operation percentiles, µs, when the configuration timed each operation. */
  perOpPercentilesUs: PercentilesSchema.optional(),
  /** Independent count (`ip -j link show type macvtap`) after the phase: what should be there and what was. */
  verified: z.object({ expected: z.number().int().nonnegative(), found: z.number().int().nonnegative() }).optional(),
});
/** A raw row. */
export type RawRow = z.infer<typeof RawRowSchema>;

/** Repetitions of one (scenario, phase, n, devices, config), summarised. */
export const SummaryRowSchema = z.object({
  scenario: z.enum(SCENARIOS),
  phase: z.enum(PHASES),
  config: z.enum(CONFIG_IDS),
  n: z.number().int().positive(),
  devices: z.number().int().positive().optional(),
  /** `us` = per operation (device or call), `ms` = whole phase. */
  unit: z.enum(['us', 'ms']),
  stats: StatsSchema,
  /** This configuration ÷ `ip -batch`, per repetition pair; `null` for `ip -batch` itself or when it is missing. */
  vsBatch: StatsSchema.nullable(),
});
/** A summary row. */
export type SummaryRow = z.infer<typeof SummaryRowSchema>;

/** The whole report. */
export const ControlReportSchema = z.object({
  schema: z.literal(CONTROL_SCHEMA_ID),
  host: HostSchema.extend({ iproute2: z.string(), netlinkPackage: z.string().nullable() }),
  /** The command as a user would type it (`macvtap bench control …`). */
  command: z.string(),
  /** `process.argv` of the run. */
  argv: z.array(z.string()),
  options: z.object({
    quick: z.boolean(),
    reps: z.number().int().positive(),
    sizes: z.array(z.number().int().positive()),
    scale: z.array(z.number().int().positive()),
    groupSize: z.number().int().positive(),
    calls: z.number().int().positive(),
    ipCalls: z.number().int().positive(),
    deleteSample: z.number().int().nonnegative(),
    parallelDepth: z.number().int().positive(),
    configs: z.array(z.enum(CONFIG_IDS)),
    warmup: z.boolean(),
  }),
  namespace: z.string(),
  startedAt: z.string(),
  durationS: num.nonnegative(),
  unavailable: z.array(z.object({ id: z.enum(CONFIG_IDS), reason: z.string() })),
  notes: z.array(z.string()),
  rows: z.array(RawRowSchema),
  summary: z.array(SummaryRowSchema),
  targets: z.array(TargetSchema),
});
/** The report type. */
export type ControlReport = z.infer<typeof ControlReportSchema>;
/** Options as recorded in the report. */
export type ControlOptions = ControlReport['options'];
