/**
 * CPU accounting for the datapath benchmark: the whole machine from `/proc/stat` (user, system, softirq split — the
 * kernel's datapath work mostly lands in softirq and system) and single processes from `/proc/PID/stat` (OVS daemons).
 * `perf` hardware counters do not exist on these VMs; these counters do.
 */
import { readFileSync } from 'node:fs';

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

/** CPU seconds (user + system) a process has used so far, from `/proc/PID/stat`; `null` when it is gone. */
export function processCpuSeconds(pid: number): number | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name can hold spaces and parentheses: fields are counted from the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After ')': state(3) ppid(4) … utime is field 14, stime 15 (1-based in proc(5)), i.e. index 11 and 12 here.
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return (utime + stime) / TICKS_PER_S;
}
