/**
 * Bandwidth limits of a guest's port, libvirt's `<bandwidth>` enforced with traffic-control messages of our own (no
 * `tc` process): `inbound` is traffic to the guest, `outbound` traffic from it, in libvirt's units (kilobytes/s of
 * 1000 bytes, bursts in kilobytes of 1024 bytes, as libvirt passes them to `tc` as `kbps` and `kb`).
 *
 * Which path each direction takes depends on the device. On a macvtap, frames to the guest arrive through the
 * device's receive path (the lower device hands them to the macvtap, whose rx handler queues them for the tap fd), so
 * `inbound` is a policer on its ingress qdisc; frames from the guest are written to the tap fd and leave through the
 * device's transmit path, so `outbound` is an htb shaper as its root qdisc. On a tap it is the other way round. These
 * are the pieces libvirt installs (an htb class and an ingress policer, swapped for `type='direct'`).
 */
import type { Binding, NativeTcDump, NativeTcObject, NativeTcOp } from '../binding.js';
import { binding } from './binding.js';
import { MacvtapError, callNative, invalidType, invalidValue, outOfRange } from './errors.js';
import { getLink } from './link.js';
import type { LinkRef, NetnsOption } from './types.js';
import * as v from './validate.js';

/** One direction's limit, libvirt's `<inbound>`/`<outbound>` attributes. */
export interface BandwidthRate {
  /** Average rate in kilobytes/s (1000 bytes); required, 1 … 4294967295. */
  average: number;
  /** Peak rate in kilobytes/s, at least `average`: how fast a burst may go out. */
  peak?: number;
  /**
   * Kilobytes (1024 bytes) that may pass at up to `peak` (or line rate) above the average. Not given: 50 ms at the
   * average rate, at least two full-size frames.
   */
  burst?: number;
}

/** libvirt's `<bandwidth>`: a direction left out is not limited. */
export interface Bandwidth {
  /** To the guest. */
  inbound?: BandwidthRate;
  /** From the guest. */
  outbound?: BandwidthRate;
}

const RATE_KEYS = ['average', 'peak', 'burst', 'floor'] as const;
const U32_MAX = 0xffffffff;
/** The handle of our htb root qdisc ("mv"), its class `6d76:1`, and our policer's filter handle. */
export const BANDWIDTH_HANDLE = 0x6d76;
/** Our policer's two filter priorities: a replacement goes in at the free one before the old one is deleted. */
const POLICE_PRIOS = [0x6d76, 0x6d77] as const;
const TC_H_ROOT = 0xffffffff;
const TC_H_INGRESS = 0xfffffff1;
const INGRESS_HANDLE = 0xffff0000;
/** Filters on a clsact qdisc's ingress side. */
const CLSACT_INGRESS = 0xfffffff2;
/** The policer's bucket for packets at peak rate and its largest packet (libvirt's `mtu 64kb`): GSO-sized frames pass. */
const POLICE_MTU = 65535;
const FULL_FRAME = 1514;
const PSCHED_TICK_NS = 64;
const BYTES_PER_KB_RATE = 1000;
const BYTES_PER_KB_BURST = 1024;

/** The addon's traffic-control calls. */
type TcCalls = Pick<Binding, 'tcDump' | 'tcApply'>;

const addonTc: TcCalls = {
  tcDump: (key, ns) => binding.tcDump(key, ns),
  tcApply: (key, ops, ns) => binding.tcApply(key, ops, ns),
};

let tc: TcCalls = addonTc;

/**
 * Replaces the addon's `tcDump`/`tcApply` (a call left out stays the addon's), for tests of kernel answers no machine
 * here gives — a kernel built without CONFIG_NET_SCHED, whose rtnetlink answers every traffic-control message with
 * `EOPNOTSUPP`; `null` restores them. @internal
 */
export function setTcForTests(fake: Partial<TcCalls> | null): void {
  tc = fake === null ? addonTc : { ...addonTc, ...fake };
}

/** A validated direction in kernel units. @internal */
interface Bucket {
  rate: number;
  burst: number;
  peak: number;
}

function rateOf(name: string, value: unknown): Bucket {
  const o = v.options(name, value as object);
  v.knownKeys(name, o, RATE_KEYS);
  const r = o as Record<string, unknown>;
  if (r.floor !== undefined) {
    throw invalidValue(`${name}.floor`, 'is not supported: libvirt honours it only for interfaces of a libvirt network', r.floor);
  }
  const kb = (k: string): number | undefined => {
    const x = r[k];
    if (x === undefined) return undefined;
    if (typeof x !== 'number') throw invalidType(`${name}.${k}`, 'a number', x);
    if (!Number.isInteger(x) || x < 1 || x > U32_MAX) throw outOfRange(`${name}.${k}`, `an integer >= 1 and <= ${U32_MAX}`, x);
    return x;
  };
  const average = kb('average');
  const peak = kb('peak');
  const burst = kb('burst');
  if (average === undefined) {
    throw invalidValue(`${name}.average`, burst !== undefined || peak !== undefined ? 'is required with burst or peak' : 'is required', r.average);
  }
  if (peak !== undefined && peak < average) throw outOfRange(`${name}.peak`, `>= the average (${average})`, peak);
  const rate = average * BYTES_PER_KB_RATE;
  const burstBytes = burst !== undefined ? burst * BYTES_PER_KB_BURST : Math.max(Math.ceil(rate * 0.05), 2 * FULL_FRAME);
  // The kernel keeps a bucket as the time it takes at the rate, in 64 ns ticks of 32 bits.
  const maxBurst = Math.floor((U32_MAX * PSCHED_TICK_NS * rate) / 1e9 / BYTES_PER_KB_BURST);
  if (burstBytes > U32_MAX || (burstBytes * 1e9) / rate / PSCHED_TICK_NS > U32_MAX) {
    throw outOfRange(`${name}.burst`, `at most ${Math.min(maxBurst, Math.floor(U32_MAX / BYTES_PER_KB_BURST))} KB at ${average} KB/s (the kernel's bucket is 2^32 ticks of 64 ns)`, burst);
  }
  return { rate, burst: burstBytes, peak: peak !== undefined ? peak * BYTES_PER_KB_RATE : 0 };
}

/** Which kernel path carries each direction on this link. */
async function orientation(ref: LinkRef, ns: ReturnType<typeof v.nsOf>): Promise<'macvtap' | 'tap'> {
  const link = await getLink(ref, ns === null ? undefined : { netns: ns });
  if (link.kind === 'macvtap') return 'macvtap';
  if (link.kind === 'tun') return 'tap';
  throw new MacvtapError(
    { code: 'EINVAL', errno: -22, syscall: 'RTM_GETLINK', device: link.name },
    `bandwidth applies to a guest's port (a macvtap or a tap), and ${link.name} is of kind ${link.kind ?? 'none'}`,
  );
}

/** Our pieces in a dump. */
function ours(d: NativeTcDump): { root?: NativeTcObject; cls?: NativeTcObject; ingress?: NativeTcObject; police: NativeTcObject[] } {
  const root = d.qdiscs.find((q) => q.parent === TC_H_ROOT && q.kind === 'htb' && q.handle === BANDWIDTH_HANDLE << 16);
  const cls = root && d.classes.find((c) => c.kind === 'htb' && c.handle === ((BANDWIDTH_HANDLE << 16) | 1));
  const ingress = d.qdiscs.find((q) => q.parent === TC_H_INGRESS);
  const police = d.filters.filter((f) => f.kind === 'matchall' && f.handle === BANDWIDTH_HANDLE &&
    (POLICE_PRIOS as readonly number[]).includes(f.prio ?? 0) && f.police !== undefined);
  return { ...(root && { root }), ...(cls && { cls }), ...(ingress && { ingress }), police };
}

/** Kernel refusals that mean "no traffic control here", with what is missing named. */
function explain(e: unknown): unknown {
  if (!(e instanceof MacvtapError)) return e;
  const text = e.extack ?? '';
  let what = '';
  if (e.code === 'EOPNOTSUPP' && /^RTM_GET/.test(e.syscall)) {
    what = 'traffic control (the kernel is built without CONFIG_NET_SCHED: no qdiscs, classes or filters)';
  } else if ((e.code === 'ENOENT' || e.code === 'EOPNOTSUPP') && /^RTM_NEW/.test(e.syscall)) {
    if (/classifier/i.test(text)) what = 'the matchall classifier (CONFIG_NET_CLS_MATCHALL, module cls_matchall)';
    else if (/action/i.test(text)) what = 'the police action (CONFIG_NET_ACT_POLICE, module act_police)';
    else if (/qdisc/i.test(text)) what = 'the htb or ingress qdisc (CONFIG_NET_SCH_HTB / CONFIG_NET_SCH_INGRESS)';
  }
  if (!what) return e;
  const err = new MacvtapError(
    { code: e.code, errno: e.errno, syscall: e.syscall, ...(e.device !== undefined && { device: e.device }), ...(e.extack !== undefined && { extack: e.extack }) },
    `${e.message}: this kernel lacks ${what}`,
  );
  err.stack = `${err.name}: ${err.message}\n${(e.stack ?? '').split('\n').slice(1).join('\n')}`;
  return err;
}

async function dump(key: { index?: number; name?: string }, ns: ReturnType<typeof v.nsOf>): Promise<NativeTcDump> {
  try {
    return await callNative(() => tc.tcDump(key, ns));
  } catch (e) {
    throw explain(e);
  }
}

function fromKernel(b: { rate: number; burst: number }, peak: number): BandwidthRate {
  const r: BandwidthRate = { average: Math.round(b.rate / BYTES_PER_KB_RATE), burst: Math.round(b.burst / BYTES_PER_KB_BURST) };
  if (peak > 0) r.peak = Math.round(peak / BYTES_PER_KB_RATE);
  return r;
}

/**
 * Sets a guest port's bandwidth limits so that exactly the directions given are limited: a direction left out (or
 * `null` for both) removes our limit on it and nothing else — qdiscs, classes and filters that are not ours stay.
 * Idempotent. Replacing a rate never leaves the device unshaped in between: the htb class is changed in place, and
 * a new policer goes in (at the second of our two priorities) before the old one is deleted.
 *
 * Equivalent to (macvtap; on a tap the two directions swap):
 * `tc qdisc replace dev DEV root handle 6d76: htb default 1;
 *  tc class add dev DEV parent 6d76: classid 6d76:1 htb rate OUT.average kbps ceil OUT.peak kbps burst OUT.burst kb`
 * and `tc qdisc add dev DEV ingress; tc filter add dev DEV parent ffff: prio 28022 handle 0x6d76 protocol all matchall
 *  action police rate IN.average kbps burst IN.burst kb [peakrate IN.peak kbps] mtu 64kb drop` — libvirt's
 * `<bandwidth>` on `type='direct'`.
 *
 * @example
 * ```ts
 * await setBandwidth('mvt0', { inbound: { average: 1000, burst: 64 }, outbound: { average: 500 } }, { netns: '/run/netns/lab' });
 * await setBandwidth('mvt0', null, { netns: '/run/netns/lab' }); // ours removed
 * ```
 * @throws `TypeError`/`RangeError` for a bad rate (zero, above 4294967295, peak below average, burst or peak
 *   without average, `floor`), before anything is sent.
 * @throws {@link MacvtapError} `EOPNOTSUPP` on a kernel without traffic control (message names what is missing;
 *   nothing was changed), `ENOENT` a missing qdisc/action module, `EBUSY` a root qdisc that is not ours is in the
 *   way, `EINVAL` the link is not a macvtap or a tap, `ENODEV` no such link.
 */
export async function setBandwidth(link: LinkRef, bandwidth: Bandwidth | null, options?: NetnsOption): Promise<void> {
  const key = v.linkRef('link', link);
  let inbound: Bucket | null = null;
  let outbound: Bucket | null = null;
  if (bandwidth !== null) {
    const b = v.options('bandwidth', bandwidth);
    v.knownKeys('bandwidth', b, ['inbound', 'outbound']);
    if (b.inbound !== undefined) inbound = rateOf('bandwidth.inbound', b.inbound);
    if (b.outbound !== undefined) outbound = rateOf('bandwidth.outbound', b.outbound);
  }
  const ns = v.netnsOnly(options);
  const d = await dump(key, ns); // the first message: on a kernel without tc it fails here, nothing changed
  const side = await orientation(link, ns);
  const want: Want = side === 'macvtap' ? { egress: outbound, ingress: inbound } : { egress: inbound, ingress: outbound };
  const ops = plan(d, want, v.refText(link));
  if (ops.length === 0) return;
  try {
    await callNative(() => tc.tcApply(key, ops, ns));
  } catch (e) {
    // Part of the plan may have gone through (a kernel with htb but without the police action): put back what was
    // ours before, and take away an ingress qdisc we added, so a refusal leaves the device as it was.
    try {
      const now = await callNative(() => tc.tcDump(key, ns));
      const back = plan(now, current(d), v.refText(link));
      const added = now.qdiscs.find((q) => q.parent === TC_H_INGRESS && q.kind === 'ingress');
      if (added && !d.qdiscs.some((q) => q.parent === TC_H_INGRESS) && !back.some((o) => o.op === 'deleteQdisc' && o.parent === TC_H_INGRESS)) {
        if (now.filters.length === 0) back.push({ op: 'deleteQdisc', parent: TC_H_INGRESS, handle: INGRESS_HANDLE });
      }
      if (back.length > 0) await callNative(() => tc.tcApply(key, back, ns));
    } catch {
      // The first error is the one to report.
    }
    throw explain(e);
  }
}

/** What should be ours on each path, in kernel units. */
interface Want {
  egress: Bucket | null;
  ingress: Bucket | null;
}

/** What is ours now, in the same units (for putting it back). */
function current(d: NativeTcDump): Want {
  const mine = ours(d);
  const c = mine.cls;
  const egress = c?.rate && c.ceil ? { rate: c.rate.rate, burst: c.rate.burst, peak: c.ceil.rate !== c.rate.rate ? c.ceil.rate : 0 } : null;
  const first = [...mine.police].sort((a, b) => (a.prio ?? 0) - (b.prio ?? 0))[0]?.police;
  return { egress, ingress: first ? { rate: first.rate, burst: first.burst, peak: first.peak } : null };
}

/** The ops that take the device from dump `d` to `want`, touching only ours. */
function plan(d: NativeTcDump, want: Want, device: string): NativeTcOp[] {
  const { egress, ingress } = want;
  const mine = ours(d);
  const ops: NativeTcOp[] = [];

  // Transmit path: our htb root qdisc with one class, changed in place when it exists.
  const classid = (BANDWIDTH_HANDLE << 16) | 1;
  if (egress) {
    const ceil = egress.peak || egress.rate;
    // With a peak the ceil's own bucket is small (the burst leaves at the peak rate); without, it is the burst.
    const cburst = egress.peak ? Math.max(2 * FULL_FRAME, Math.ceil(ceil / 1000)) : egress.burst;
    const cls = { parent: BANDWIDTH_HANDLE << 16, classid, rate: egress.rate, burst: egress.burst, ceil, cburst };
    if (!mine.root) {
      const other = d.qdiscs.find((q) => q.parent === TC_H_ROOT);
      if (other && other.handle !== 0) {
        throw new MacvtapError(
          { code: 'EBUSY', errno: -16, syscall: 'RTM_NEWQDISC', device },
          `${device} has a root qdisc that is not ours (${other.kind} ${(other.handle >>> 16).toString(16)}:): remove it first`,
        );
      }
      ops.push({ op: 'htbQdisc', handle: BANDWIDTH_HANDLE, defcls: 1, replace: true });
    }
    ops.push({ op: 'htbClass', create: !mine.cls, ...cls });
  } else if (mine.root) {
    ops.push({ op: 'deleteQdisc', parent: TC_H_ROOT, handle: BANDWIDTH_HANDLE << 16 });
  }

  // Receive path: a matchall policer on the ingress (or clsact) qdisc; a replacement goes in before the old goes.
  const filterParent = mine.ingress?.kind === 'clsact' ? CLSACT_INGRESS : INGRESS_HANDLE;
  if (ingress) {
    if (!mine.ingress) ops.push({ op: 'ingressQdisc' });
    const taken = new Set(mine.police.map((f) => f.prio));
    // The free priority; when both are taken (a replacement cut short) the second is cleared first, the first polices.
    const prio = taken.has(POLICE_PRIOS[0]) ? POLICE_PRIOS[1] : POLICE_PRIOS[0];
    if (taken.has(prio)) ops.push({ op: 'deleteFilter', parent: filterParent, prio });
    ops.push({ op: 'policeFilter', parent: filterParent, prio, handle: BANDWIDTH_HANDLE, rate: ingress.rate, burst: ingress.burst, peak: ingress.peak, mtu: POLICE_MTU });
    for (const p of POLICE_PRIOS) if (p !== prio && taken.has(p)) ops.push({ op: 'deleteFilter', parent: filterParent, prio: p });
  } else if (mine.police.length > 0) {
    for (const f of mine.police) ops.push({ op: 'deleteFilter', parent: filterParent, prio: f.prio! });
    // The ingress qdisc goes too when nothing else is filtering on it.
    if (mine.ingress?.kind === 'ingress' && d.filters.every((f) => mine.police.includes(f))) {
      ops.push({ op: 'deleteQdisc', parent: TC_H_INGRESS, handle: INGRESS_HANDLE });
    }
  }
  return ops;
}

/** Options of {@link getBandwidth}. */
export interface GetBandwidthOptions extends NetnsOption {
  /**
   * Also report limits that are not ours, in the layout libvirt installs for `<bandwidth>` (`virNetDevBandwidthSet`):
   * the class an htb root qdisc sends its traffic to by default (libvirt: `1:` with class `1:1`), and the first
   * filter on the ingress qdisc whose police action drops what exceeds (libvirt: `u32 match u32 0 0 police … drop`).
   * Those are the limits in force whoever installed them (ours included: they have the same layout). Default
   * `false`: ours only.
   */
  foreign?: boolean;
}

/** TC_ACT_SHOT: the police action's verdict for traffic above the rate, as libvirt and we install it. */
const TC_ACT_SHOT = 2;

/** The limits in force in libvirt's layout, ours or not: the root htb's default class and the first dropping policer. */
function foreignLimits(d: NativeTcDump): { cls?: NativeTcObject; police?: NativeTcObject } {
  const root = d.qdiscs.find((q) => q.parent === TC_H_ROOT && q.kind === 'htb');
  const cls = root && d.classes.find((c) => c.kind === 'htb' && c.handle === ((root.handle & 0xffff0000) | (root.defcls ?? 0)));
  const police = d.filters
    .filter((f) => f.police !== undefined && f.police.exceed === TC_ACT_SHOT)
    .sort((a, b) => (a.prio ?? 0) - (b.prio ?? 0))[0];
  return { ...(cls && { cls }), ...(police && { police }) };
}

/**
 * The limits a guest port has, read back from the kernel: ours (what {@link setBandwidth} installed) or, with
 * `foreign`, those in force whoever installed them — libvirt's, for `<bandwidth>` on the devices it manages. Rates in KB/s, bursts in KB
 * rounded to whole kilobytes; `peak` only when it differs from the average. Without `foreign`, qdiscs, classes and
 * filters that are not ours are not reported.
 *
 * Equivalent to: `tc class show dev DEV` and `tc filter show dev DEV ingress`, read for our handles (with `foreign`:
 * for the root htb's default class and the first police-and-drop filter).
 *
 * @example
 * ```ts
 * const { inbound, outbound } = await getBandwidth('mvt0', { netns: '/run/netns/lab' });
 * const byLibvirt = await getBandwidth('macvtap0', { foreign: true }); // the device libvirt made for type='direct'
 * ```
 * @throws {@link MacvtapError} `EOPNOTSUPP` on a kernel without traffic control, `EINVAL` the link is not a macvtap or
 *   a tap, `ENODEV` no such link.
 */
export async function getBandwidth(link: LinkRef, options?: GetBandwidthOptions): Promise<Bandwidth> {
  const key = v.linkRef('link', link);
  const opts = v.options('options', options);
  v.knownKeys('options', opts, ['netns', 'foreign']);
  const foreign = opts.foreign === undefined ? false : v.bool('foreign', opts.foreign);
  const ns = v.nsOf(opts);
  const d = await dump(key, ns);
  const side = await orientation(link, ns);
  const mine = ours(d);
  const inForce = foreign ? foreignLimits(d) : undefined;
  let egress: BandwidthRate | undefined;
  let ingress: BandwidthRate | undefined;
  const cls = inForce ? inForce.cls : mine.cls;
  if (cls?.rate && cls.ceil) {
    egress = fromKernel(cls.rate, cls.ceil.rate !== cls.rate.rate ? cls.ceil.rate : 0);
  }
  // During a replacement two may exist: the one evaluated first (lower priority number) is in force.
  const first = inForce ? inForce.police : [...mine.police].sort((a, b) => (a.prio ?? 0) - (b.prio ?? 0))[0];
  if (first?.police) ingress = fromKernel(first.police, first.police.peak);
  const r: Bandwidth = {};
  const inbound = side === 'macvtap' ? ingress : egress;
  const outbound = side === 'macvtap' ? egress : ingress;
  if (inbound) r.inbound = inbound;
  if (outbound) r.outbound = outbound;
  return r;
}
