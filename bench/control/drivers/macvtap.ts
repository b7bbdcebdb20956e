/**
 * This package's configuration: the public API (`lib/index.ts`) called in-process with `{ netns }`, exactly as a
 * driver would call it. Each create also sets the link's owner tag (a second `RTM_NEWLINK`, see `lib/owner.ts`) and
 * returns the new link's info (the kernel's `NLM_F_ECHO` of the create, the lower's name and the tap device's
 * major:minor from sysfs), which the other configurations do not do; that is part of what is measured.
 */
import { createMacvtap, deleteGroup, deleteLink, getLink, getLinkSync, openTap, type TapQueue } from 'macvtap';
import { benchBinding } from '../../native.js';
import { timeEach, timeEachSync, timeInFlight, timeOnce, type ControlDriver, type ControlTestbed, type CreateSpec, type PhaseTiming } from '../driver.js';

/** `macvtap` driver. */
export class MacvtapDriver implements ControlDriver {
  readonly id = 'macvtap' as const;
  constructor(private readonly tb: ControlTestbed) {}

  async create(specs: CreateSpec[]): Promise<PhaseTiming> {
    const netns = this.tb.path;
    const lower = this.tb.lowerIndex;
    const cpu0 = process.cpuUsage();
    const t = await timeEach(specs, (s) => createMacvtap({ lower, name: s.name, mode: 'bridge', up: true, group: s.group, netns }));
    return { ...t, userCpuMs: process.cpuUsage(cpu0).user / 1000 };
  }

  delete(names: string[]): Promise<PhaseTiming> {
    const netns = this.tb.path;
    return timeEach(names, (n) => deleteLink(n, { netns }));
  }

  deleteGroup(group: number): Promise<PhaseTiming> {
    return timeOnce(() => deleteGroup(group, { netns: this.tb.path }));
  }

  getLinkLoop(count: number): Promise<PhaseTiming> {
    const netns = this.tb.path;
    return timeEach(new Array<number>(count).fill(0), () => getLink('lo', { netns }));
  }

  getLinkSyncLoop(count: number): PhaseTiming {
    const netns = this.tb.path;
    return timeEachSync(count, () => getLinkSync('lo', { netns }));
  }

  getLinkRawLoop(count: number): PhaseTiming {
    const perOpMs = Array.from(benchBinding.rawGetLinkLoop(1, count, this.tb.path), (ns) => ns / 1e6);
    return { totalMs: perOpMs.reduce((a, b) => a + b, 0), perOpMs };
  }

  /** `count` `getLink('lo')` calls with `depth` in flight (throughput; the addon runs them on libuv's pool). */
  getLinkParallel(count: number, depth: number): Promise<PhaseTiming> {
    const netns = this.tb.path;
    return timeInFlight(count, depth, () => getLink('lo', { netns }));
  }

  async openClose(names: string[]): Promise<{ open: PhaseTiming; close: PhaseTiming }> {
    const netns = this.tb.path;
    const queues: TapQueue[] = [];
    try {
      const open = await timeEach(names, async (n) => {
        const got = await openTap(n, { netns });
        queues.push(...got);
        if (got.length !== 1) throw new Error(`openTap(${n}) gave ${got.length} queues, expected 1`);
      });
      const close = await timeEach(queues, async (q) => q.close());
      return { open, close };
    } finally {
      await Promise.all(queues.map((q) => q.close())); // idempotent; only matters when a phase failed half-way
    }
  }

  async close(): Promise<void> {}
}
