/**
 * One soak actor: a loop of random operations on links it alone owns, shared by the async callers on the main
 * thread and the worker threads (worker.ts). Every operation is one the library promises to do right,
 * on a state the actor knows, so any error is a finding; the actor's model of its links is what the orchestrator
 * checks against `ip -d -j link show`.
 */
import { createMacvtap, deleteLink, openTap, setLink, type MacvtapMode, type TapQueue } from '../../lib/index.js';
import { prng } from '../helpers/prng.js';

/** What the actor believes one of its links looks like. */
export interface ModelLink {
  name: string;
  /** Index into the namespace list the actor was given. */
  ns: number;
  mode: MacvtapMode;
  mtu: number;
  up: boolean;
  alias: string | null;
  /** Open queues (not part of what ip shows). */
  queues: number;
}

/** Counts of what an actor did. */
export interface ActorCounts {
  ops: number;
  byOp: Record<string, number>;
}

const MODES: MacvtapMode[] = ['bridge', 'vepa', 'private'];

/** A model alias meaning "our owner tag" (ip shows `macvtap:soak:<pid>:<start time>`). */
export const OWNER_ALIAS = 'macvtap:soak:';
const MAX_LINKS = 6;

/**
 * A soak actor over namespaces `netns` (paths), each holding a lower device `lower`. Names are `s<id>x<n>`, so
 * actors never touch each other's links.
 */
export class Actor {
  readonly counts: ActorCounts = { ops: 0, byOp: {} };
  /** The links with their open queues; `queues` of the model is derived from `open`. */
  readonly #links = new Map<string, Omit<ModelLink, 'queues'> & { open: TapQueue[] }>();
  readonly #random: () => number;
  #next = 0;

  constructor(
    readonly id: number,
    readonly netns: readonly string[],
    readonly lower: string,
    seed: number,
  ) {
    this.#random = prng(seed);
  }

  /** The actor's model of its links, for the orchestrator's check. */
  model(): ModelLink[] {
    return [...this.#links.values()].map(({ open, ...l }) => ({ ...l, queues: open.length }));
  }

  #pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.#random() * list.length)]!;
  }

  #int(lo: number, hi: number): number {
    return lo + Math.floor(this.#random() * (hi - lo + 1));
  }

  /** Runs one random operation. Throws whatever the library threw, with the operation named. */
  async step(): Promise<void> {
    const links = [...this.#links.values()];
    const ops: string[] = [];
    if (links.length < MAX_LINKS) ops.push('create', 'create');
    if (links.length > 0) ops.push('set', 'set', 'delete');
    if (links.some((l) => l.open.length === 0)) ops.push('open', 'open');
    if (links.some((l) => l.open.length > 0)) ops.push('close', 'close');
    if (links.some((l) => l.open.length === 0) && this.netns.length > 1) ops.push('move');
    const op = this.#pick(ops);
    try {
      await this.#run(op, links);
    } catch (e) {
      const err = e as Error;
      err.message = `actor ${this.id}, ${op}: ${err.message}`;
      throw err;
    }
    this.counts.ops++;
    this.counts.byOp[op] = (this.counts.byOp[op] ?? 0) + 1;
  }

  async #run(op: string, links: (Omit<ModelLink, 'queues'> & { open: TapQueue[] })[]): Promise<void> {
    switch (op) {
      case 'create': {
        const ns = this.#int(0, this.netns.length - 1);
        const l = { name: `s${this.id}x${this.#next++}`, ns, mode: this.#pick(MODES), mtu: this.#int(1280, 1500), up: this.#random() < 0.5 };
        await createMacvtap({ lower: this.lower, name: l.name, mode: l.mode, mtu: l.mtu, up: l.up, owner: 'soak', netns: this.netns[ns]! });
        // The default owner tag is the alias ip shows until a set replaces it.
        this.#links.set(l.name, { ...l, alias: OWNER_ALIAS, open: [] });
        return;
      }
      case 'set': {
        const l = this.#pick(links);
        const o = { netns: this.netns[l.ns]! };
        switch (this.#int(0, 2)) {
          case 0: l.mtu = this.#int(1280, 1500); await setLink(l.name, { mtu: l.mtu }, o); return;
          case 1: l.up = !l.up; await setLink(l.name, { up: l.up }, o); return;
          default: l.alias = `soak ${this.#int(0, 1e6)}`; await setLink(l.name, { alias: l.alias }, o); return;
        }
      }
      case 'open': {
        const l = this.#pick(links.filter((x) => x.open.length === 0));
        l.open = await openTap(l.name, { queues: this.#int(1, 4), netns: this.netns[l.ns]! });
        return;
      }
      case 'close': {
        const l = this.#pick(links.filter((x) => x.open.length > 0));
        const q = l.open;
        l.open = [];
        await Promise.all(q.map((x) => x.close()));
        return;
      }
      case 'move': {
        const l = this.#pick(links.filter((x) => x.open.length === 0));
        const to = (l.ns + 1) % this.netns.length;
        await setLink(l.name, { moveToNetns: this.netns[to]! }, { netns: this.netns[l.ns]! });
        l.ns = to;
        // The kernel closes a device it moves (dev_change_net_namespace): it arrives down.
        l.up = false;
        return;
      }
      case 'delete': {
        const l = this.#pick(links);
        this.#links.delete(l.name);
        await Promise.all(l.open.map((x) => x.close()));
        await deleteLink(l.name, { netns: this.netns[l.ns]! });
        return;
      }
      default:
        throw new Error(`unknown op ${op}`);
    }
  }

  /** Closes every queue and deletes every link the actor holds. */
  async finish(): Promise<void> {
    for (const l of this.#links.values()) {
      await Promise.all(l.open.map((x) => x.close()));
      await deleteLink(l.name, { netns: this.netns[l.ns]! });
    }
    this.#links.clear();
  }
}

