/**
 * The control-plane measurement: every configuration does the same rtnetlink work in the same namespace, and the
 * configurations take turns within each repetition (A B C D, A B C D, …) so slow drift of the machine lands on all of
 * them alike.
 *
 * Scenarios, per repetition:
 * - lifecycle, for each N: create N macvtaps (up in the create request) → open one queue of each → close them (this
 *   package only: `ip` and the `netlink` package cannot issue `TUNSETIFF`) → delete them one by one. Each one-by-one
 *   delete waits an RCU grace period in the kernel (the same for every tool; the report's notes say how long), so
 *   above `deleteSample` devices only that many are deleted one by one and the rest by group (timed separately);
 *   `deleteSample = 0` deletes all one by one.
 * - teardown: `groupSize` macvtaps (made with the library, untimed) removed by group in one request.
 * - scaling: macvtaps created up to each checkpoint (by default 256, 1024, 4096); the per-device time of a window of devices just
 *   below each checkpoint shows how create cost grows with the device count (in the kernel), and comparing with
 *   `ip -batch` at the same point estimates the userspace share. `ip` per command is left out here (4096 process
 *   starts would add a minute and say nothing the lifecycle rows do not).
 * - getlink: `RTM_GETLINK lo` in a loop: per-call cost of a cheap operation (and, where the tool can pipeline, with
 *   several calls in flight).
 * Every create and delete phase is checked with an independent count (`ip -j link show type macvtap`).
 */
import { execFile } from 'node:child_process';
import { createMacvtap, getLink } from 'macvtap';
import { CONFIG_IDS, type ConfigId, type ControlDriver, type ControlTestbed, type PhaseTiming, type Unavailable } from './driver.js';
import { IpBatchDriver, IpPerCommandDriver } from './drivers/ip.js';
import { MacvtapDriver } from './drivers/macvtap.js';
import { NetlinkPackageDriver } from './drivers/netlink.js';
import type { ControlOptions, RawRow } from './schema.js';
import type { Progress } from '../report/progress.js';
import { percentiles } from '../report/stats.js';
import { BENCH_PREFIX, TestNetns } from '../testbed/netns.js';

/** `IFLA_GROUP` values used by the scenarios (any non-zero value unused in a fresh namespace would do). */
const GROUP = { lifecycle: 4201, teardown: 4202, scaling: 4203, warmup: 4204 } as const;

/** Name prefixes per configuration, so a leftover device tells which configuration made it. */
const PREFIX: Record<ConfigId, string> = { 'macvtap': 'mva', 'ip': 'mvb', 'ip-batch': 'mvc', 'netlink': 'mvd' };

/** Default options: lifecycles of 1, 100 and 1000 devices, scaling to 4096, three repetitions. */
export const CONTROL_DEFAULTS: ControlOptions = {
  quick: false,
  reps: 3,
  sizes: [1, 100, 1000],
  scale: [256, 1024, 4096],
  groupSize: 1000,
  calls: 2000,
  ipCalls: 100,
  deleteSample: 100,
  parallelDepth: 16,
  configs: [...CONFIG_IDS],
  warmup: true,
};

/** `--quick`: one repetition of small sizes for smoke use (well under a minute). */
export const CONTROL_QUICK: ControlOptions = {
  ...CONTROL_DEFAULTS,
  quick: true,
  reps: 1,
  sizes: [1, 20],
  scale: [64, 256],
  groupSize: 200,
  calls: 500,
  ipCalls: 20,
  deleteSample: 20,
};

/** What {@link runControl} returns: the raw rows and the context the report needs. */
export interface ControlRun {
  rows: RawRow[];
  unavailable: Unavailable[];
  namespace: string;
  startedAt: string;
  durationS: number;
}

/**
 * Makes the benchmark's namespace (`mvt-bench-<pid>-<n>`) with the veth pair `bl0`/`bp0`, both up; removed with
 * `destroy()`, at the latest on exit or SIGINT/SIGTERM.
 */
export async function createControlTestbed(): Promise<ControlTestbed & { destroy(): void }> {
  const ns = TestNetns.create(BENCH_PREFIX);
  try {
    ns.veth('bl0', 'bp0');
    const lowerIndex = (await getLink('bl0', { netns: ns.path })).ifindex;
    return { name: ns.name, path: ns.path, lower: 'bl0', marker: 'bp0', lowerIndex, destroy: () => ns.destroy() };
  } catch (e) {
    ns.destroy();
    throw e;
  }
}

function ipJson(ns: string, args: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile('ip', ['-n', ns, '-j', ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`ip -n ${ns} -j ${args.join(' ')}: ${stderr.trim() || err.message}`));
      const text = stdout.trim();
      resolve(text ? JSON.parse(text) : []);
    });
  });
}

/** Macvtaps in the namespace, counted by `ip` (independent of every configuration under test). */
async function countMacvtaps(tb: ControlTestbed): Promise<number> {
  const links = (await ipJson(tb.name, ['link', 'show', 'type', 'macvtap'])) as unknown[];
  return links.length;
}

async function verify(tb: ControlTestbed, expected: number, what: string): Promise<{ expected: number; found: number }> {
  const found = await countMacvtaps(tb);
  if (found !== expected) throw new Error(`${what}: expected ${expected} macvtaps in ${tb.name}, ip shows ${found}`);
  return { expected, found };
}

function row(
  base: Pick<RawRow, 'scenario' | 'phase' | 'config' | 'rep'> & { devices?: number },
  n: number,
  t: PhaseTiming,
  verified?: { expected: number; found: number },
): RawRow {
  const basis = t.netMs ?? t.totalMs;
  const r: RawRow = { ...base, n, totalMs: t.totalMs, perOpUs: (basis * 1000) / n };
  if (t.netMs !== undefined) r.netMs = t.netMs;
  if (t.startupMs !== undefined) r.startupMs = t.startupMs;
  if (t.userCpuMs !== undefined) r.userCpuUs = (t.userCpuMs * 1000) / n;
  if (t.perOpMs && t.perOpMs.length > 0) {
    const p = percentiles(t.perOpMs);
    r.perOpPercentilesUs = { p50: p.p50 * 1000, p90: p.p90 * 1000, p99: p.p99 * 1000, max: p.max * 1000 };
  }
  if (verified) r.verified = verified;
  return r;
}

function names(cfg: ConfigId, from: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${PREFIX[cfg]}${from + i}`);
}

/** One lifecycle: create N → open/close each (where possible) → delete (sampled one by one, rest by group). */
async function lifecycle(tb: ControlTestbed, d: ControlDriver, n: number, rep: number, opts: ControlOptions, out: RawRow[]): Promise<void> {
  const base = { scenario: 'lifecycle' as const, config: d.id, rep };
  const list = names(d.id, 0, n);
  const group = rep < 0 ? GROUP.warmup : GROUP.lifecycle;
  const created = await d.create(list.map((name) => ({ name, group })));
  out.push(row({ ...base, phase: 'create' }, n, created, await verify(tb, n, `${d.id} create ${n}`)));
  if (d.openClose) {
    const { open, close } = await d.openClose(list);
    out.push(row({ ...base, phase: 'open-queue' }, n, open), row({ ...base, phase: 'close-queue' }, n, close));
  }
  const one = opts.deleteSample > 0 ? Math.min(n, opts.deleteSample) : n;
  const deleted = await d.delete(list.slice(0, one));
  out.push(row({ ...base, phase: 'delete' }, one, deleted, await verify(tb, n - one, `${d.id} delete ${one}`)));
  if (n > one) {
    const rest = await d.deleteGroup(group);
    out.push(row({ ...base, phase: 'delete-rest-group' }, n - one, rest, await verify(tb, 0, `${d.id} delete group`)));
  }
}

/** Teardown by group of `groupSize` devices made (untimed) with the library. */
async function teardown(tb: ControlTestbed, d: ControlDriver, rep: number, opts: ControlOptions, out: RawRow[]): Promise<void> {
  for (const name of names(d.id, 0, opts.groupSize)) {
    await createMacvtap({ lower: tb.lowerIndex, name, mode: 'bridge', up: true, group: GROUP.teardown, netns: tb.path });
  }
  await verify(tb, opts.groupSize, `teardown setup for ${d.id}`);
  const t = await d.deleteGroup(GROUP.teardown);
  out.push(row({ scenario: 'teardown', phase: 'delete-group', config: d.id, rep }, opts.groupSize, t, await verify(tb, 0, `${d.id} group delete`)));
}

/**
 * Window of devices, just below checkpoint `c`, whose per-device create time is reported for it: up to 256, never
 * reaching below the previous checkpoint `prev`. Large windows matter for the user-CPU figure, which getrusage
 * splits from the total by sampled ticks.
 */
export function scalingWindow(c: number, prev = 0): number {
  return Math.max(1, Math.min(256, c - prev));
}

/** Creates devices up to each checkpoint; times a window just below each; removes all by group (timed). */
async function scaling(tb: ControlTestbed, d: ControlDriver, rep: number, opts: ControlOptions, out: RawRow[]): Promise<void> {
  const base = { scenario: 'scaling' as const, config: d.id, rep };
  let made = 0;
  for (const [i, c] of opts.scale.entries()) {
    const w = scalingWindow(c, opts.scale[i - 1] ?? 0);
    const fill = c - w - made;
    if (fill > 0) {
      const t = await d.create(names(d.id, made, fill).map((name) => ({ name, group: GROUP.scaling })));
      made += fill;
      out.push(row({ ...base, phase: 'create-fill', devices: made }, fill, t));
    }
    const t = await d.create(names(d.id, made, w).map((name) => ({ name, group: GROUP.scaling })));
    made += w;
    out.push(row({ ...base, phase: 'create-window', devices: made }, w, t, await verify(tb, made, `${d.id} scaling to ${made}`)));
  }
  const t = await d.deleteGroup(GROUP.scaling);
  out.push(row({ ...base, phase: 'delete-group', devices: made }, made, t, await verify(tb, 0, `${d.id} scaling teardown`)));
}

async function getlink(d: ControlDriver, rep: number, opts: ControlOptions, out: RawRow[]): Promise<void> {
  const base = { scenario: 'getlink' as const, config: d.id, rep };
  const count = d.id === 'ip' ? opts.ipCalls : opts.calls;
  out.push(row({ ...base, phase: 'getlink' }, count, await d.getLinkLoop(count)));
  if (d.getLinkParallel) {
    out.push(row({ ...base, phase: 'getlink-par' }, opts.calls, await d.getLinkParallel(opts.calls, opts.parallelDepth)));
  }
  if (d.getLinkSyncLoop) out.push(row({ ...base, phase: 'getlink-sync' }, opts.calls, d.getLinkSyncLoop(opts.calls)));
  if (d.getLinkRawLoop) out.push(row({ ...base, phase: 'getlink-raw' }, opts.calls, d.getLinkRawLoop(opts.calls)));
}

/** `items` starting at index `k` (mod its length), wrapping around. */
export function rotate<T>(items: readonly T[], k: number): T[] {
  return items.map((_, i) => items[(i + k) % items.length] as T);
}

/** Configurations that take part in the scaling scenario. */
const SCALING_CONFIGS: readonly ConfigId[] = ['macvtap', 'ip-batch', 'netlink'];

/**
 * Runs the whole control-plane benchmark in a fresh namespace and removes it afterwards (also on failure, and on
 * SIGINT/SIGTERM through the testbed's hooks). Throws if any phase fails or any count does not match.
 */
export async function runControl(opts: ControlOptions, progress: Progress): Promise<ControlRun> {
  const startedAt = new Date();
  const t0 = performance.now();
  const tb = await createControlTestbed();
  const allDrivers: ControlDriver[] = [];
  const unavailable: Unavailable[] = [];
  const rows: RawRow[] = [];
  try {
    for (const id of CONFIG_IDS) {
      if (!opts.configs.includes(id)) continue;
      if (id === 'macvtap') allDrivers.push(new MacvtapDriver(tb));
      else if (id === 'ip') allDrivers.push(new IpPerCommandDriver(tb));
      else if (id === 'ip-batch') allDrivers.push(new IpBatchDriver(tb));
      else {
        const d = await NetlinkPackageDriver.start(tb);
        if ('reason' in d) {
          unavailable.push(d);
          progress.log(`netlink package unavailable: ${d.reason}`);
        } else allDrivers.push(d);
      }
    }
    const allScalers = allDrivers.filter((d) => SCALING_CONFIGS.includes(d.id));

    if (opts.warmup) {
      // Untimed: loads code paths, fills caches, lets the kernel allocate its per-namespace structures.
      progress.phase('warm-up', allDrivers.length);
      const scratch: RawRow[] = [];
      for (const d of allDrivers) {
        await lifecycle(tb, d, 10, -1, { ...opts, deleteSample: 10 }, scratch);
        await d.getLinkLoop(d.id === 'ip' ? 5 : 200);
        progress.step(`warm-up ${d.id}`);
      }
    }

    const steps = opts.reps * (opts.sizes.length * allDrivers.length + allDrivers.length + allScalers.length + allDrivers.length);
    progress.phase('control', steps);

    for (let rep = 0; rep < opts.reps; rep++) {
      const r = `rep ${rep + 1}/${opts.reps}`;
      // Each repetition starts with the next configuration: whoever runs first after a phase meets the kernel still
      // finishing the previous configuration's teardown (deferred sysfs and RCU work after a 4096-device group
      // delete), and a fixed order gave that to this package every time.
      const drivers = rotate(allDrivers, rep);
      const scalers = rotate(allScalers, rep);
      for (const n of opts.sizes) {
        for (const d of drivers) {
          await lifecycle(tb, d, n, rep, opts, rows);
          progress.step(`${r} lifecycle N=${n} ${d.id}`);
        }
      }
      for (const d of drivers) {
        await teardown(tb, d, rep, opts, rows);
        progress.step(`${r} teardown ${opts.groupSize} by group ${d.id}`);
      }
      for (const d of scalers) {
        await scaling(tb, d, rep, opts, rows);
        progress.step(`${r} scaling to ${opts.scale.at(-1)} ${d.id}`);
      }
      for (const d of drivers) {
        await getlink(d, rep, opts, rows);
        progress.step(`${r} getLink(lo) ${d.id}`);
      }
    }
  } finally {
    progress.end();
    for (const d of allDrivers) await d.close().catch(() => undefined);
    tb.destroy();
  }
  return { rows, unavailable, namespace: tb.name, startedAt: startedAt.toISOString(), durationS: (performance.now() - t0) / 1000 };
}
