/**
 * `dummy` as a macvtap's lower device, next to a veth doing the same: the lower a real host usually has is a NIC,
 * and `dummy` (no peer, drops what it sends but counts it) is the closest stand-in a kernel offers. This host's 6.18
 * kernel has no `dummy`, so the dummy cases skip here with that reason; they run in the second-kernel VM
 * (`node test/vm/run.mjs test/vm/dummy.test.ts`), where Debian's 6.1 autoloads the module.
 * The veth cases run everywhere and are the reference: both lowers must behave the same.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, expect, it } from 'vitest';
import { createMacvtap, getLink, openTap } from '../../lib/index.js';
import { buildUdpFrame } from '../../bench/testbed/frames.js';
import { describePrivileged, isRoot } from '../helpers/suite.js';
import { rejection } from '../helpers/rejection.js';
import { destroyAll, TestNetns } from '../../bench/testbed/netns.js';

/** `null` when the kernel can make `dummy` links, else why not. Probed with `ip`, independent of the code under test. */
const dummyUnsupported: string | null = (() => {
  if (!isRoot) return 'not root';
  const ns = TestNetns.create();
  try {
    const r = spawnSync('ip', ['-n', ns.name, 'link', 'add', 'probe0', 'type', 'dummy'], { encoding: 'utf8' });
    return r.status === 0 ? null : `kernel lacks dummy (${r.stderr.trim()})`;
  } finally {
    ns.destroy();
  }
})();

const spaces: TestNetns[] = [];
afterEach(() => {
  for (const s of spaces.splice(0)) s.destroy();
});
afterAll(() => destroyAll());

type LowerKind = 'veth' | 'dummy';

/** A fresh namespace without IPv6, with the lower device `l0` (a dummy, or a veth whose peer `l1` is up too), up. */
function withLower(kind: LowerKind): TestNetns {
  const ns = TestNetns.create();
  spaces.push(ns);
  // No IPv6 on links made from here on: their router solicitations and MLD reports would leave through l0 too, and
  // the test counts the frames l0 sends.
  ns.exec('sysctl', ['-qw', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv6.conf.all.disable_ipv6=1']);
  if (kind === 'veth') ns.veth('l0', 'l1');
  else {
    ns.ip('link', 'add', 'l0', 'type', 'dummy');
    ns.ip('link', 'set', 'l0', 'up');
  }
  return ns;
}

/** Frames the kernel counted as sent by `dev` (`ip -s`), the independent view of the datapath. */
function txPackets(ns: TestNetns, dev: string): number {
  const [l] = JSON.parse(ns.ip('-s', '-j', 'link', 'show', 'dev', dev)) as Array<{ stats64: { tx: { packets: number } } }>;
  return l!.stats64.tx.packets;
}

describePrivileged('dummy as a lower device, alongside veth', () => {
  for (const kind of ['veth', 'dummy'] as const) {
    const skip = kind === 'dummy' ? dummyUnsupported : null;
    const tag = skip ? ` [SKIPPED: ${skip}]` : '';

    it(`${kind} lower: a bridge macvtap names its lower, sends a written frame out through it, and goes when it goes${tag}`, async (ctx) => {
      if (skip) ctx.skip(skip);
      const ns = withLower(kind);
      const info = await createMacvtap({ netns: ns.path, lower: 'l0', name: 'mvt0', mode: 'bridge', up: true });
      const lowerIndex = ns.ipLink('l0').ifindex;
      expect(info.kind).toBe('macvtap');
      expect(info.macvlan?.mode).toBe('bridge');
      expect(info.lower).toEqual({ ifindex: lowerIndex, name: 'l0', netnsid: null });
      expect(ns.ipLink('mvt0').link).toBe('l0');
      expect(ns.ipLink('l0').linkinfo?.info_kind).toBe(kind);

      const [q] = await openTap('mvt0', { netns: ns.path, vnetHdr: false });
      try {
        const before = txPackets(ns, 'l0');
        // Unicast to a MAC no sibling has: bridge mode hands it to the lower device's transmit path.
        const frame = buildUdpFrame({
          srcMac: info.mac!, dstMac: '02:00:00:00:00:99', srcIp: '192.0.2.1', dstIp: '192.0.2.99',
          srcPort: 4000, dstPort: 4001, payload: Buffer.from('through the lower device'),
        });
        expect(q!.write(frame)).toBe(frame.length);
        // Counters settle after the softirq that transmits; poll briefly (bounded).
        let after = before;
        for (let i = 0; i < 50 && after === before; i++) {
          await new Promise((r) => setTimeout(r, 20));
          after = txPackets(ns, 'l0');
        }
        expect(after - before).toBe(1);
      } finally {
        await q!.close();
      }

      // Deleting the lower takes its macvlan ports with it.
      ns.ip('link', 'del', 'l0');
      const gone = await rejection(getLink('mvt0', { netns: ns.path }));
      expect(gone.code).toBe('ENODEV');
    });

    it(`${kind} lower: passthru, once up, takes the lower promiscuous and is the only macvtap it allows${tag}`, async (ctx) => {
      if (skip) ctx.skip(skip);
      const ns = withLower(kind);
      expect(ns.ipLink('l0').flags).not.toContain('PROMISC');
      await createMacvtap({ netns: ns.path, lower: 'l0', name: 'pt0', mode: 'passthru', up: true });
      expect(ns.ipLink('l0').promiscuity).toBe(1);
      const second = await rejection(createMacvtap({ netns: ns.path, lower: 'l0', name: 'pt1', mode: 'bridge' }));
      expect(second.code).toBe('EINVAL');
      expect(second.syscall).toBe('RTM_NEWLINK');
      expect(ns.ipLinks().map((l) => l.ifname)).not.toContain('pt1');
    });

    it(`${kind} lower: the macvtap's MTU may reach the lower's and not pass it${tag}`, async (ctx) => {
      if (skip) ctx.skip(skip);
      const ns = withLower(kind);
      ns.ip('link', 'set', 'l0', 'mtu', '9000');
      const at = await createMacvtap({ netns: ns.path, lower: 'l0', name: 'm9000', mtu: 9000 });
      expect(at.mtu).toBe(9000);
      expect(ns.ipLink('m9000').mtu).toBe(9000);
      const above = await rejection(createMacvtap({ netns: ns.path, lower: 'l0', name: 'm9001', mtu: 9001 }));
      expect(above.code).toBe('EINVAL');
      expect(ns.ipLinks().map((l) => l.ifname)).not.toContain('m9001');
    });
  }
});
