/**
 * What every configuration of the control-plane benchmark implements: the same rtnetlink work (create macvtaps with
 * `up` in one request, delete them one by one or by group, a cheap `RTM_GETLINK` in a loop) done by a different tool,
 * all in the same {@link ControlTestbed} namespace.
 */

/** The namespace every configuration works in, with the lower device of every macvtap the benchmark makes. */
export interface ControlTestbed {
  /** `mvt-bench-<pid>-<n>`: what `ip -n` takes. */
  readonly name: string;
  /** `/run/netns/<name>`: what the library's `netns` option takes. */
  readonly path: string;
  /** The lower device (`bl0`), one end of a veth pair whose other end ({@link marker}) is in the same namespace. */
  readonly lower: string;
  /** The veth's other end (`bp0`): never touched by the benchmark, so `ip -batch` can use it as a timing marker. */
  readonly marker: string;
  /** The lower device's ifindex in {@link path}. */
  readonly lowerIndex: number;
}

/** Configuration ids, in the order the benchmark interleaves them (A B C D A B C D …). */
export const CONFIG_IDS = ['macvtap', 'ip', 'ip-batch', 'netlink'] as const;
/** One configuration id. */
export type ConfigId = (typeof CONFIG_IDS)[number];

/** Human labels for the table. */
export const CONFIG_LABELS: Record<ConfigId, string> = {
  'macvtap': 'macvtap (this package)',
  'ip': 'ip, 1 process/command',
  'ip-batch': 'ip -batch',
  'netlink': 'npm netlink 0.3',
};

/** The timing of one phase (a batch of identical operations). */
export interface PhaseTiming {
  /** Wall time of the whole phase, ms, as this configuration's user would see it. */
  totalMs: number;
  /**
   * `ip -batch` only: the phase timed between marker commands inside one `ip -batch` process, i.e. without the
   * process's start (exec, namespace switch, sysfs mount) and exit, which are paid once per phase and would otherwise
   * dominate small batches.
   */
  netMs?: number;
  /** `ip -batch` only: `totalMs − netMs`, the process's time outside the phase's commands. */
  startupMs?: number;
  /** Per-operation wall times, ms, when the configuration can time each operation. */
  perOpMs?: number[];
  /**
   * In-process configurations only: user-mode CPU time of the whole process during the phase, ms (getrusage, all
   * threads, so libuv's pool too; the kernel's work done in our syscalls is system time and is not in it).
   */
  userCpuMs?: number;
}

/** A macvtap to create. */
export interface CreateSpec {
  name: string;
  /** `IFLA_GROUP`, so a run's devices can be removed together. */
  group: number;
}

/** One configuration under test. */
export interface ControlDriver {
  readonly id: ConfigId;
  /** Creates each macvtap (bridge mode, on the testbed's lower device, up in the create request), in order. */
  create(specs: CreateSpec[]): Promise<PhaseTiming>;
  /** Deletes each link by name, one `RTM_DELLINK` per link, in order. */
  delete(names: string[]): Promise<PhaseTiming>;
  /** Deletes every link of `group` in one `RTM_DELLINK`. */
  deleteGroup(group: number): Promise<PhaseTiming>;
  /** `RTM_GETLINK` of `lo` by name, `count` times in sequence. */
  getLinkLoop(count: number): Promise<PhaseTiming>;
  /** `count` `RTM_GETLINK`s of `lo` with `depth` requests in flight (throughput), where the tool can pipeline. */
  getLinkParallel?(count: number, depth: number): Promise<PhaseTiming>;
  /** `count` synchronous `RTM_GETLINK`s of `lo` through the tool's blocking call, where it has one. */
  getLinkSyncLoop?(count: number): PhaseTiming;
  /** The floor: the same request `count` times on a plain socket, timed in C (no JS, no parsing). */
  getLinkRawLoop?(count: number): PhaseTiming;
  /**
   * Opens one queue of each macvtap (`/dev/tapN`, `TUNSETIFF`), then closes them all; the two are timed apart
   * because closing a tap queue waits an RCU grace period in the kernel (`tap_put_queue` → `synchronize_rcu`).
   * Only this package can: `ip` and the `netlink` package have no way to issue `TUNSETIFF`.
   */
  openClose?(names: string[]): Promise<{ open: PhaseTiming; close: PhaseTiming }>;
  /** Releases helper processes and sockets. Idempotent. */
  close(): Promise<void>;
}

/** A configuration that could not run here, and why (printed and kept in the JSON instead of a number). */
export interface Unavailable {
  id: ConfigId;
  reason: string;
}

// Phase timing on the monotonic clock (performance.now()), written once for the in-process configurations and the
// netlink package's helper process.

/** Times `fn` once per item, in sequence, returning the phase and per-operation wall times. */
export async function timeEach<T>(items: readonly T[], fn: (item: T) => Promise<unknown>): Promise<Required<Pick<PhaseTiming, 'totalMs' | 'perOpMs'>>> {
  const perOpMs = new Array<number>(items.length);
  const t0 = performance.now();
  let prev = t0;
  for (let i = 0; i < items.length; i++) {
    await fn(items[i]!);
    const now = performance.now();
    perOpMs[i] = now - prev;
    prev = now;
  }
  return { totalMs: prev - t0, perOpMs };
}

/** {@link timeEach} for a blocking call, `count` times. */
export function timeEachSync(count: number, fn: () => unknown): Required<Pick<PhaseTiming, 'totalMs' | 'perOpMs'>> {
  const perOpMs = new Array<number>(count);
  const t0 = performance.now();
  let prev = t0;
  for (let i = 0; i < count; i++) {
    fn();
    const now = performance.now();
    perOpMs[i] = now - prev;
    prev = now;
  }
  return { totalMs: prev - t0, perOpMs };
}

/** Times one operation that is a whole phase (a group delete): its time is also its one per-operation time. */
export async function timeOnce(fn: () => Promise<unknown>): Promise<PhaseTiming> {
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  return { totalMs: ms, perOpMs: [ms] };
}

/** Times `count` calls of `fn` kept `depth` in flight (throughput: no per-operation times). */
export async function timeInFlight(count: number, depth: number, fn: () => Promise<unknown>): Promise<PhaseTiming> {
  let next = 0;
  const t0 = performance.now();
  const lane = async (): Promise<void> => {
    while (next < count) {
      next++;
      await fn();
    }
  };
  await Promise.all(Array.from({ length: depth }, lane));
  return { totalMs: performance.now() - t0 };
}
