/**
 * Property tests of the core library's public calls (seeded PRNG, reproducible: set MVT_PROPERTY_SEED to explore).
 *
 * 1. Random valid `createMacvtap` options are differential-tested against iproute2: the same request goes to our
 *    library in namespace A and to `ip link add …` in twin namespace B (same lower device). Both must succeed or both
 *    fail, and when they succeed `ip -d -j link show` must show the same link in A and B.
 * 2. Random invalid options for every public call (a valid object with one field broken: wrong type, out of range,
 *    bad MAC or name, unknown key) must throw OUR argument errors (Node's `ERR_INVALID_ARG_*` / `ERR_OUT_OF_RANGE`)
 *    before anything reaches the kernel: the namespace looks exactly the same to ip afterwards.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  addAddress, createBridge, createMacvtap, createTap, createVeth, deleteGroup, deleteLink, gc, getLink, getLinkSync,
  listLinks, MacvtapError, openTap, setLink, setOffloads, watchLinks, type CreateMacvtapOptions,
} from '../lib/index.js';
import { prng } from './helpers/prng.js';
import { describePrivileged } from './helpers/suite.js';
import { destroyAll, TestNetns, type IpLinkJson } from '../bench/testbed/netns.js';

const SEED = Number(process.env.MVT_PROPERTY_SEED ?? 20261124);
const VALID_RUNS = 60;
const INVALID_RUNS = 300;

describePrivileged(`core calls, property-tested (seed ${SEED})`, () => {
  let a: TestNetns;
  let b: TestNetns;
  beforeAll(() => {
    a = TestNetns.create();
    b = TestNetns.create();
    for (const ns of [a, b]) ns.veth('mvt-l0', 'mvt-p0');
  });
  afterAll(() => {
    a?.destroy();
    b?.destroy();
    destroyAll();
  });

  const rand = prng(SEED);
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const hex = (n: number): string => n.toString(16).padStart(2, '0');
  /** A unicast MAC, locally administered or not. */
  const mac = (): string => [int(0, 255) & 0xfe, ...Array.from({ length: 5 }, () => int(0, 255))].map(hex).join(':');

  /** What ip shows of a link, reduced to what a create sets (ifindex and kernel-chosen fields left out). */
  function shape(l: IpLinkJson, macGiven: boolean): Record<string, unknown> {
    const d = l.linkinfo?.info_data ?? {};
    return {
      kind: l.linkinfo?.info_kind, mode: d.mode, nopromisc: d.nopromisc ?? false, mtu: l.mtu, txqlen: l.txqlen,
      group: l.group, alias: l.ifalias ?? null, up: l.flags.includes('UP'),
      // Without a MAC the kernel picks a random one; passthru takes the lower's once up (the twins' lowers differ).
      address: !macGiven ? 'random' : d.mode === 'passthru' ? 'lower' : l.address,
    };
  }

  it(`${VALID_RUNS} random valid createMacvtap requests do exactly what the same ip link add does`, async () => {
    const outcomes = { bothOk: 0, bothFailed: 0 };
    for (let i = 0; i < VALID_RUNS; i++) {
      const name = `mvt-q${i}`;
      const mode = pick(['bridge', 'vepa', 'private', 'passthru'] as const);
      const o: CreateMacvtapOptions = { lower: 'mvt-l0', name, mode, owner: false };
      const ip = ['link', 'add', 'link', 'mvt-l0', 'name', name];
      if (rand() < 0.6) {
        o.mac = mac();
        ip.push('address', o.mac);
      }
      // Up to 9000: above the lower's 1500 the kernel refuses, and both sides must agree on that too.
      if (rand() < 0.7) {
        o.mtu = pick([68, 576, 1280, 1500, 1501, 9000, int(68, 9000)]);
        ip.push('mtu', String(o.mtu));
      }
      if (rand() < 0.5) {
        o.txqlen = int(0, 10_000);
        ip.push('txqueuelen', String(o.txqlen));
      }
      if (rand() < 0.5) {
        o.group = int(1, 5000);
        ip.push('group', String(o.group));
      }
      ip.push('type', 'macvtap', 'mode', mode);
      if (mode === 'passthru' && rand() < 0.5) {
        o.nopromisc = true;
        ip.push('nopromisc');
      }
      const follow: string[][] = [];
      if (rand() < 0.5) {
        o.alias = pick(['vm-1 eth0', 'a', 'ünïcode', 'x'.repeat(255), `tag:${int(0, 1e6)}`]);
        follow.push(['link', 'set', name, 'alias', o.alias]);
      }
      if (rand() < 0.5) {
        o.up = true;
        follow.push(['link', 'set', name, 'up']);
      }

      let ours: unknown = null;
      try {
        await createMacvtap({ ...o, netns: a.path });
      } catch (e) {
        ours = e;
      }
      let theirs: string | null = null;
      try {
        b.ip(...ip);
        for (const f of follow) b.ip(...f);
      } catch (e) {
        theirs = (e as Error).message;
      }
      const ctx = `run ${i}: ${JSON.stringify(o)} vs ip ${ip.join(' ')}`;
      if (ours !== null || theirs !== null) {
        expect({ ours: ours !== null, theirs: theirs !== null }, `${ctx}\nours: ${String(ours)}\nip: ${theirs}`).toEqual({ ours: true, theirs: true });
        expect(ours, ctx).toBeInstanceOf(MacvtapError);
        outcomes.bothFailed++;
        // Neither side left anything.
        expect(a.ipLinks().some((l) => l.ifname === name), ctx).toBe(false);
        if (b.ipLinks().some((l) => l.ifname === name)) b.ip('link', 'del', name);
        continue;
      }
      outcomes.bothOk++;
      expect(shape(a.ipLink(name), o.mac !== undefined), ctx).toEqual(shape(b.ipLink(name), o.mac !== undefined));
      await deleteLink(name, { netns: a.path });
      b.ip('link', 'del', name);
    }
    // The generator reaches both outcomes (an mtu above the lower's is refused by both).
    expect(outcomes.bothOk).toBeGreaterThan(VALID_RUNS / 3);
    expect(outcomes.bothFailed).toBeGreaterThan(0);
  });

  it(`${INVALID_RUNS} random invalid calls throw our argument errors and change nothing`, async () => {
    const p = { netns: '' };
    const breakers: Array<[string, () => unknown]> = [
      ['wrong type', () => pick([null, true, {}, [], () => 1, Symbol('s'), 1n])],
      ['bad number', () => pick([-1, 1.5, NaN, Infinity, 2 ** 32, -(2 ** 31) - 1])],
      ['bad string', () => pick(['', ' ', 'a/b', 'x'.repeat(16), 'a\0b', 'zz:zz', '01:02:03:04:05', 'ff:ff:ff:ff:ff:ff', '-1'])],
    ];
    // Each call with a valid argument set and the fields that can be broken. Unknown keys are tried on all of them.
    const calls: Array<{ name: string; fields: string[]; run: (args: Record<string, unknown>) => unknown }> = [
      { name: 'createMacvtap', fields: ['lower', 'name', 'mode', 'mac', 'mtu', 'txqlen', 'up', 'group', 'alias', 'ifindex', 'netns', 'owner', 'signal'],
        run: (x) => createMacvtap({ lower: 'mvt-l0', name: 'mvt-bad', ...p, ...x } as never) },
      { name: 'createVeth', fields: ['name', 'peer', 'mac', 'mtu', 'up', 'group'], run: (x) => createVeth({ name: 'mvt-bv', peer: { name: 'mvt-bw' }, ...p, ...x } as never) },
      { name: 'createBridge', fields: ['name', 'up', 'mtu', 'owner'], run: (x) => createBridge({ name: 'mvt-bb', ...p, ...x } as never) },
      { name: 'createTap', fields: ['name', 'vnetHdr', 'up'], run: (x) => createTap({ name: 'mvt-bt', ...p, ...x } as never) },
      { name: 'setLink', fields: ['mtu', 'mac', 'name', 'alias', 'group', 'txqlen', 'up', 'promisc', 'master', 'moveToNetns'],
        run: (x) => setLink('mvt-l0', { mtu: 1500, ...x } as never, p) },
      { name: 'openTap', fields: ['queues', 'vnetHdr', 'vnetHdrSize', 'nonblock', 'netns'], run: (x) => openTap('mvt-l0', { ...p, ...x } as never) },
      { name: 'getLink', fields: ['netns'], run: (x) => getLink('mvt-l0', { ...p, ...x } as never) },
      { name: 'getLinkSync', fields: ['netns'], run: (x) => getLinkSync('mvt-l0', { ...p, ...x } as never) },
      { name: 'listLinks', fields: ['kind', 'netns'], run: (x) => listLinks({ ...p, ...x } as never) },
      { name: 'deleteLink', fields: ['netns'], run: (x) => deleteLink('mvt-l0', { ...p, ...x } as never) },
      { name: 'deleteGroup', fields: ['netns'], run: (x) => deleteGroup(77, { ...p, ...x } as never) },
      { name: 'setOffloads', fields: ['tx', 'rx', 'sg', 'tso', 'gso', 'gro'], run: (x) => setOffloads('mvt-l0', { tx: true, ...x } as never, p) },
      { name: 'addAddress', fields: ['netns'], run: (x) => addAddress('mvt-l0', '10.9.9.1/24', { ...p, ...x } as never) },
      { name: 'gc', fields: ['owner', 'netns', 'dryRun'], run: (x) => gc({ ...p, dryRun: true, ...x } as never) },
      { name: 'watchLinks', fields: ['kinds', 'snapshot', 'signal', 'receiveBuffer'], run: (x) => watchLinks({ ...p, ...x } as never) },
    ];
    const before = JSON.stringify(a.ipLinks());
    const seen = new Map<string, number>();
    for (let i = 0; i < INVALID_RUNS; i++) {
      p.netns = a.path;
      const call = pick(calls);
      const unknownKey = rand() < 0.15;
      const field = unknownKey ? `bogus${int(0, 9)}` : pick(call.fields);
      const [kind, gen] = pick(breakers);
      let value = gen();
      // A value some fields legitimately take is not a break: skip those combinations (documented on the types).
      const accepts = (f: string, v: unknown): boolean =>
        (typeof v === 'boolean' && ['up', 'promisc', 'vnetHdr', 'nonblock', 'snapshot', 'dryRun', 'tx', 'rx', 'sg', 'tso', 'gso', 'gro'].includes(f)) ||
        (f === 'owner' && (v === false || (typeof v === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(v)))) ||
        (f === 'master' && v === null) ||
        (f === 'alias' && typeof v === 'string' && !v.includes('\0') && Buffer.byteLength(v) <= 255) ||
        (['name', 'lower', 'master'].includes(f) && typeof v === 'string' && /^[^/\s:\0]{1,15}$/.test(v) && v !== '.' && v !== '..') ||
        (['lower', 'master'].includes(f) && typeof v === 'number' && Number.isInteger(v) && v > 0 && v < 2 ** 31) ||
        (f === 'kind' && typeof v === 'string' && /^[a-z0-9_.-]{1,31}$/i.test(v)) ||
        (f === 'kinds' && Array.isArray(v) && v.length === 0) ||
        (['mtu', 'txqlen', 'group', 'queues', 'receiveBuffer', 'ifindex'].includes(f) && typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 31 && !(f === 'group' && v >= 0x6d40_0000)) ||
        (f === 'netns' && (typeof v === 'string' ? v.startsWith('/') : typeof v === 'number' && Number.isInteger(v) && v >= 0));
      if (!unknownKey && accepts(field, value)) value = Symbol('never valid');
      const shown = typeof value === 'symbol' || typeof value === 'bigint' || typeof value === 'function' ? String(value) : JSON.stringify(value);
      const ctx = `run ${i}: ${call.name}({ ${field}: ${shown} }) [${kind}]`;
      let err: unknown = null;
      try {
        const r = call.run({ [field]: value });
        if (r instanceof Promise) await r;
        // watchLinks reports bad options at once; a watcher that was made must not exist.
        else if (r && typeof (r as { close?: unknown }).close === 'function') (r as { close: () => void }).close();
      } catch (e) {
        err = e;
      }
      expect(err, ctx).not.toBeNull();
      expect(err, ctx).toBeInstanceOf(Error);
      expect(err, ctx).not.toBeInstanceOf(MacvtapError);
      expect((err as { code?: string }).code, `${ctx}: ${(err as Error).message}`).toMatch(/^ERR_(INVALID_ARG_TYPE|INVALID_ARG_VALUE|OUT_OF_RANGE)$/);
      seen.set(call.name, (seen.get(call.name) ?? 0) + 1);
    }
    // Nothing reached the kernel: ip sees the namespace exactly as before, and every call was exercised.
    expect(JSON.stringify(a.ipLinks())).toBe(before);
    expect([...seen.keys()].sort()).toEqual(calls.map((c) => c.name).sort());
  });
});
