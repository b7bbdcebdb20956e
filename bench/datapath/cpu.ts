/**
 * CPU accounting for the datapath benchmark: the whole machine from `/proc/stat` (user, system, softirq split — the
 * kernel's datapath work mostly lands in softirq and system) and single processes from `/proc/PID/stat` (OVS daemons).
 * `perf` hardware counters do not exist on these VMs; these counters do.
 */
import { readFileSync } from 'node:fs';
import { procStat } from 'macvtap/internal';
import type { OvsInstance } from '../testbed/ovs.js';

/** Clock ticks per second of `/proc` CPU times (`sysconf(_SC_CLK_TCK)`, 100 on every Linux architecture Node runs). */
const TICKS_PER_S = 100;

/** Machine-wide CPU time, seconds, summed over all CPUs. */
export interface CpuTimes {
  user: number;
  system: number;
  softirq: number;
  irq: number;
  idle: number;
  /** user + nice + system + irq + softirq + steal: time some CPU was doing work. */
  busy: number;
}

/** Reads the aggregate `cpu` line of `/proc/stat`. */
export function readCpuTimes(): CpuTimes {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  return {
    user: (user + nice) / TICKS_PER_S,
    system: system / TICKS_PER_S,
    softirq: softirq / TICKS_PER_S,
    irq: irq / TICKS_PER_S,
    idle: (idle + iowait) / TICKS_PER_S,
    busy: (user + nice + system + irq + softirq + steal) / TICKS_PER_S,
  };
}

/** `b − a`, field by field. */
export function cpuDelta(a: CpuTimes, b: CpuTimes): CpuTimes {
  return {
    user: b.user - a.user,
    system: b.system - a.system,
    softirq: b.softirq - a.softirq,
    irq: b.irq - a.irq,
    idle: b.idle - a.idle,
    busy: b.busy - a.busy,
  };
}

/** CPU seconds (user + system: fields 14 and 15 of `/proc/PID/stat`) a process has used so far; `null` when it is gone. */
export function processCpuSeconds(pid: number): number | null {
  const f = procStat(pid);
  const utime = Number(f?.[13]);
  const stime = Number(f?.[14]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return (utime + stime) / TICKS_PER_S;
}

/** CPU seconds both daemons of a private Open vSwitch have used so far (0 for one that is not running). */
export function ovsCpuSeconds(ovs: OvsInstance): { vswitchd: number; ovsdb: number } {
  return {
    vswitchd: ovs.switchPid ? (processCpuSeconds(ovs.switchPid) ?? 0) : 0,
    ovsdb: ovs.dbPid ? (processCpuSeconds(ovs.dbPid) ?? 0) : 0,
  };
}
