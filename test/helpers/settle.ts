/**
 * The fields of a link that the kernel's link watcher changes after the fact, and waiting for it.
 *
 * A change of carrier (and the registration of some links: macvlan/macvtap queue a run when they are created) only
 * queues work for the link watcher (`linkwatch_fire_event`); the work item runs later (at once for stacked links, up
 * to a second later for others, and longer under an emulated CPU such as the 6.1-kernel VM's TCG) and sets the
 * operstate. Until it has run, an up link with carrier still reads `unknown` (or `down` after its carrier came), and
 * the flags derived from the operstate differ too: `IFF_RUNNING` (ip prints `NO-CARRIER` when it is missing on an up
 * link) and `IFF_DORMANT`; carrier (`IFF_LOWER_UP`) is grouped with them. Two readings of those **settling fields** a
 * moment apart can therefore legitimately differ, and comparing them is only meaningful between readings taken
 * after the link watcher has run.
 *
 * What "has run" looks like: once it has, an up link's operstate is the one the kernel derives from the rest
 * (`default_operstate` in net/core/link_watch.c): `up` with carrier, `dormant` with carrier and `IFF_DORMANT`,
 * `down`/`lowerlayerdown` without carrier. A link that is down reads `down` whatever the watcher holds (and has none
 * of the derived flags), so it is always settled. `unknown` is what a link reads until its first run, which some links
 * never get: loopback, `dummy`, a bridge without ports; for every other kind `unknown` on an up link means the run is
 * still pending.
 *
 * {@link settleLinks} waits (polling `ip`, the independent view, bounded) until every link of a namespace is settled;
 * {@link linkPending}/{@link ipLinkPending} say whether one reading is; {@link stableFields}/{@link settlingFields}
 * split a reading so the rest can be compared strictly whenever it was taken.
 */
import { expect } from 'vitest';
import type { LinkInfo } from '../../lib/index.js';
import type { IpLinkJson, TestNetns } from '../../bench/testbed/netns.js';

const IFF_UP = 0x1;
const IFF_LOOPBACK = 0x8;
export const IFF_RUNNING = 0x40;
export const IFF_LOWER_UP = 0x10000;
export const IFF_DORMANT = 0x20000;
/** The `ifi_flags` bits that move with the link watcher. */
export const SETTLING_IFF = IFF_RUNNING | IFF_LOWER_UP | IFF_DORMANT;
/** The words `ip` prints for them (`NO-CARRIER` is an up link without `IFF_RUNNING`). */
export const SETTLING_IP_FLAGS = ['LOWER_UP', 'NO-CARRIER', 'DORMANT'];

/** What decides whether one reading of a link is settled, from either view. */
interface Watched {
  name: string;
  kind: string | null;
  up: boolean;
  carrier: boolean;
  dormant: boolean;
  loopback: boolean;
  /** Lower case. */
  operstate: string;
  /** Links in the same reading of the namespace whose master this link is. */
  ports: number;
}

/** Kinds that may read `unknown` for good while up with carrier: their drivers never queue a link watcher run. */
const NEVER_WATCHED_KINDS = new Set(['dummy']);

/** Why this reading is not settled yet (the link watcher has work queued for it), or `null` when it is. */
function pending(s: Watched): string | null {
  if (!s.up) return null;
  const state = `${s.name}: up, ${s.carrier ? 'carrier' : 'no carrier'}${s.dormant ? ', dormant' : ''}, operstate ${s.operstate}`;
  if (s.carrier) {
    if (s.operstate === (s.dormant ? 'dormant' : 'up')) return null;
    if (s.operstate === 'unknown' && (s.loopback || NEVER_WATCHED_KINDS.has(s.kind ?? '') || (s.kind === 'bridge' && s.ports === 0))) return null;
    return state;
  }
  return s.operstate === 'down' || s.operstate === 'lowerlayerdown' || s.operstate === 'notpresent' ? null : state;
}

function portsOf(name: string, dump: readonly IpLinkJson[]): number {
  return dump.filter((x) => x.master === name).length;
}

/** {@link pending} of one link as `ip -d -j link show` printed it; `dump` is the same listing of its namespace. */
export function ipLinkPending(l: IpLinkJson, dump: readonly IpLinkJson[]): string | null {
  return pending({
    name: l.ifname, kind: l.linkinfo?.info_kind ?? null, up: l.flags.includes('UP'), carrier: l.flags.includes('LOWER_UP'),
    dormant: l.flags.includes('DORMANT'), loopback: l.flags.includes('LOOPBACK'), operstate: l.operstate.toLowerCase(),
    ports: portsOf(l.ifname, dump),
  });
}

/** {@link pending} of our reading of a link; `dump` is `ip`'s listing of its namespace (for a bridge's ports). */
export function linkPending(info: LinkInfo, dump: readonly IpLinkJson[]): string | null {
  return pending({
    name: info.name, kind: info.kind, up: (info.flags & IFF_UP) !== 0, carrier: (info.flags & IFF_LOWER_UP) !== 0,
    dormant: (info.flags & IFF_DORMANT) !== 0, loopback: (info.flags & IFF_LOOPBACK) !== 0, operstate: info.operstate,
    ports: portsOf(info.name, dump),
  });
}

/**
 * Waits until the kernel's link watcher has run for every link `ip` lists in `ns` (no link {@link ipLinkPending}),
 * polling `ip -d -j link show`; returns that settled listing. Fails after `timeoutMs` naming every link still pending
 * and its state. Readings taken after it returns agree on the settling fields as long as nothing changes the links.
 */
export async function settleLinks(ns: TestNetns, { timeoutMs = 15_000 } = {}): Promise<IpLinkJson[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dump = ns.ipLinks();
    const waiting = dump.map((l) => ipLinkPending(l, dump)).filter((r): r is string => r !== null);
    if (waiting.length === 0) return dump;
    if (Date.now() >= deadline) {
      throw new Error(`${ns.name}: the kernel's link watcher has not settled within ${timeoutMs} ms: ${waiting.join('; ')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A reading without its settling fields (and with their `ifi_flags` bits cleared): comparable whenever it was taken. */
export function stableFields(info: LinkInfo): Omit<LinkInfo, 'operstate' | 'carrier'> {
  const { operstate: _o, carrier: _c, ...rest } = info;
  return { ...rest, flags: info.flags & ~SETTLING_IFF };
}

/** The settling fields of a reading: comparable only between settled readings. */
export function settlingFields(info: LinkInfo): { operstate: string; carrier: boolean; flags: number } {
  return { operstate: info.operstate, carrier: info.carrier, flags: info.flags & SETTLING_IFF };
}

/**
 * Two readings of ours of one link, `earlier` taken at any time and `later` after {@link settleLinks} returned `dump`:
 * the stable fields must agree; the settling ones must too unless `earlier` predates the link watcher's run.
 */
export function expectSameLink(earlier: LinkInfo, later: LinkInfo, dump: readonly IpLinkJson[]): void {
  expect(linkPending(later, dump), 'the later reading is settled').toBeNull();
  expect(stableFields(earlier)).toEqual(stableFields(later));
  if (linkPending(earlier, dump) === null) expect(settlingFields(earlier)).toEqual(settlingFields(later));
}
