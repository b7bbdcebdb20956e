/**
 * The testbed's netlink/ioctl pieces: bridges and their ports, addresses, plain tap devices and offloads. Each call is
 * cross-checked with the independent tools (`ip -d -j link show`, `ip -j addr`, `ethtool -k`) in throwaway namespaces.
 */
import { afterAll, afterEach, beforeEach, expect, it } from 'vitest';
import {
  addAddress, createBridge, createMacvtap, createTap, getLink, MacvtapError, setBridgePort, setLink, setOffloads,
} from '../lib/index.js';
import { describePrivileged } from './helpers/suite.js';
import { destroyAll, TestNetns } from '../bench/testbed/netns.js';

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; syscall?: string }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

interface IpAddrJson { ifname: string; addr_info: { family: string; local: string; prefixlen: number; broadcast?: string }[] }
interface SlaveData { hairpin?: boolean; learning?: boolean; flood?: boolean }

function slaveData(ns: TestNetns, dev: string): SlaveData {
  const l = ns.ipLink(dev) as unknown as { linkinfo?: { info_slave_kind?: string; info_slave_data?: SlaveData } };
  expect(l.linkinfo?.info_slave_kind).toBe('bridge');
  return l.linkinfo?.info_slave_data ?? {};
}

/** `ethtool -k DEV` as a map of feature → on. */
function features(ns: TestNetns, dev: string): Map<string, boolean> {
  const out = ns.exec('ethtool', ['-k', dev]);
  const m = new Map<string, boolean>();
  for (const line of out.split('\n')) {
    const match = /^\s*([a-z0-9-]+):\s+(on|off)/.exec(line);
    if (match) m.set(match[1]!, match[2] === 'on');
  }
  return m;
}

describePrivileged('bridge, address, tap and offload calls', () => {
  let ns: TestNetns;
  beforeEach(() => {
    ns = TestNetns.create();
  });
  afterEach(() => ns.destroy());
  afterAll(() => destroyAll());

  it('creates a bridge (up, mtu) as ip sees it', async () => {
    const br = await createBridge({ name: 'mvt-br0', up: true, mtu: 1400, netns: ns.path });
    const l = ns.ipLink('mvt-br0');
    expect(br.kind).toBe('bridge');
    expect(l.linkinfo?.info_kind).toBe('bridge');
    expect(br.ifindex).toBe(l.ifindex);
    expect(br.up).toBe(true);
    expect(l.flags).toContain('UP');
    expect(br.mtu).toBe(1400);
    expect(l.mtu).toBe(1400);
    const dup = await rejection(createBridge({ name: 'mvt-br0', netns: ns.path }));
    expect(dup).toBeInstanceOf(MacvtapError);
    expect(dup.code).toBe('EEXIST');
    await expect(createBridge({ name: 'a/b', netns: ns.path })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('enslaves a port by name and by ifindex, sets hairpin/learning/flood, and releases it', async () => {
    const br = await createBridge({ name: 'mvt-br0', up: true, netns: ns.path });
    ns.veth('mvt-a0', 'mvt-a1');
    const port = await setLink('mvt-a0', { master: 'mvt-br0' }, { netns: ns.path });
    expect(port?.master).toBe(br.ifindex);
    expect(ns.ipLink('mvt-a0').master).toBe('mvt-br0');
    // Fresh port: the bridge's defaults (learning and flooding on, hairpin off).
    expect(port?.bridgePort).toEqual({ hairpin: false, learning: true, flood: true });
    expect(slaveData(ns, 'mvt-a0')).toMatchObject({ hairpin: false, learning: true, flood: true });

    await setBridgePort('mvt-a0', { hairpin: true, learning: false, flood: false }, { netns: ns.path });
    expect(slaveData(ns, 'mvt-a0')).toMatchObject({ hairpin: true, learning: false, flood: false });
    expect((await getLink('mvt-a0', { netns: ns.path })).bridgePort).toEqual({ hairpin: true, learning: false, flood: false });
    // Only what is given changes.
    await setBridgePort('mvt-a0', { flood: true }, { netns: ns.path });
    expect(slaveData(ns, 'mvt-a0')).toMatchObject({ hairpin: true, learning: false, flood: true });

    const released = await setLink('mvt-a0', { master: null }, { netns: ns.path });
    expect(released?.master).toBeNull();
    expect(released?.bridgePort ?? null).toBeNull();
    expect(ns.ipLink('mvt-a0').master).toBeUndefined();

    await setLink('mvt-a1', { master: br.ifindex }, { netns: ns.path });
    expect(ns.ipLink('mvt-a1').master).toBe('mvt-br0');
  });

  it('refuses bad bridge-port input before the kernel, and a non-port with the kernel\'s error', async () => {
    ns.veth('mvt-a0', 'mvt-a1');
    await expect(setBridgePort('mvt-a0', {}, { netns: ns.path })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(setBridgePort('mvt-a0', { hairpin: 'yes' as unknown as boolean }, { netns: ns.path })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    const notPort = await rejection(setBridgePort('mvt-a0', { hairpin: true }, { netns: ns.path }));
    expect(notPort).toBeInstanceOf(MacvtapError);
    expect(notPort.syscall).toBe('RTM_NEWLINK');
    const noMaster = await rejection(setLink('mvt-a0', { master: 'mvt-none' }, { netns: ns.path }));
    expect(noMaster).toBeInstanceOf(MacvtapError);
    expect(noMaster.code).toBe('ENODEV');
    expect(ns.ipLink('mvt-a0').master).toBeUndefined();
  });

  it('adds IPv4 (with broadcast) and IPv6 addresses as ip addr shows them', async () => {
    ns.veth('mvt-a0', 'mvt-a1');
    await addAddress('mvt-a0', '10.200.9.1/24', { netns: ns.path });
    const index = (await getLink('mvt-a0', { netns: ns.path })).ifindex;
    await addAddress(index, 'fd00:200:9::1/64', { netns: ns.path });
    const [j] = JSON.parse(ns.ip('-j', 'addr', 'show', 'dev', 'mvt-a0')) as IpAddrJson[];
    const v4 = j!.addr_info.find((a) => a.family === 'inet');
    expect(v4).toMatchObject({ local: '10.200.9.1', prefixlen: 24, broadcast: '10.200.9.255' });
    expect(j!.addr_info.find((a) => a.family === 'inet6' && a.local === 'fd00:200:9::1')).toMatchObject({ prefixlen: 64 });

    const dup = await rejection(addAddress('mvt-a0', '10.200.9.1/24', { netns: ns.path }));
    expect(dup).toBeInstanceOf(MacvtapError);
    expect(dup.code).toBe('EEXIST');
    expect(dup.syscall).toBe('RTM_NEWADDR');
    for (const bad of ['10.200.9.1', '10.200.9.300/24', 'x/24', '10.0.0.1/2a']) {
      await expect(addAddress('mvt-a0', bad, { netns: ns.path })).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    }
    for (const bad of ['10.200.9.1/33', 'fd00::1/129']) {
      await expect(addAddress('mvt-a0', bad, { netns: ns.path })).rejects.toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    }
    const before = JSON.parse(ns.ip('-j', 'addr', 'show', 'dev', 'mvt-a0')) as IpAddrJson[];
    expect(before[0]!.addr_info.filter((a) => a.family === 'inet')).toHaveLength(1);
    const nodev = await rejection(addAddress('mvt-nope', '10.200.9.2/24', { netns: ns.path }));
    expect(nodev.code).toBe('ENODEV');
  });

  it('creates a tap device inside the namespace that lives exactly as long as its fd', async () => {
    const q = await createTap({ name: 'mvt-t%d', vnetHdr: true, up: true, netns: ns.path });
    try {
      expect(q.device).toBe('mvt-t0');
      expect(q.vnetHdr).toBe(true);
      expect(q.vnetHdrSize).toBe(10);
      expect(q.fd).toBeGreaterThan(2);
      const l = ns.ipLink('mvt-t0') as unknown as { ifindex: number; flags: string[]; linkinfo?: { info_kind?: string; info_data?: { type?: string; vnet_hdr?: boolean; pi?: boolean } } };
      expect(l.ifindex).toBe(q.ifindex);
      expect(l.flags).toContain('UP');
      expect(l.linkinfo?.info_kind).toBe('tun');
      expect(l.linkinfo?.info_data).toMatchObject({ type: 'tap', vnet_hdr: true, pi: false });
      // Born in the namespace, not where the process runs.
      expect(JSON.parse(ns.exec('ip', ['-j', 'link', 'show'])).some((x: { ifname: string }) => x.ifname === 'mvt-t0')).toBe(true);
    } finally {
      await q.close();
    }
    expect(ns.ipLinks().some((x) => x.ifname === 'mvt-t0')).toBe(false);

    const raw = await createTap({ name: 'mvt-raw', netns: ns.path });
    const l = ns.ipLink('mvt-raw') as unknown as { flags: string[]; linkinfo?: { info_data?: { vnet_hdr?: boolean } } };
    expect(l.linkinfo?.info_data?.vnet_hdr).toBe(false);
    expect(l.flags).not.toContain('UP');
    const clash = await rejection(createTap({ name: 'mvt-raw', netns: ns.path }));
    expect(clash).toBeInstanceOf(MacvtapError);
    expect(clash.syscall).toBe('ioctl(TUNSETIFF)');
    await raw.close();
    expect(ns.ipLinks().some((x) => x.ifname === 'mvt-raw')).toBe(false);
  });

  it('turns offloads off and on as ethtool -k reports them', async () => {
    ns.veth('mvt-a0', 'mvt-a1');
    expect(features(ns, 'mvt-a0').get('tx-checksumming')).toBe(true);
    await setOffloads('mvt-a0', { tx: false, gro: false, gso: false }, { netns: ns.path });
    let f = features(ns, 'mvt-a0');
    expect(f.get('tx-checksumming')).toBe(false);
    expect(f.get('generic-receive-offload')).toBe(false);
    expect(f.get('generic-segmentation-offload')).toBe(false);
    // The other end is untouched.
    expect(features(ns, 'mvt-a1').get('tx-checksumming')).toBe(true);

    const index = (await getLink('mvt-a0', { netns: ns.path })).ifindex;
    await setOffloads(index, { tx: true, sg: true, tso: true, gso: true, gro: true }, { netns: ns.path });
    f = features(ns, 'mvt-a0');
    expect(f.get('tx-checksumming')).toBe(true);
    expect(f.get('tcp-segmentation-offload')).toBe(true);
    expect(f.get('generic-receive-offload')).toBe(true);

    await expect(setOffloads('mvt-a0', {}, { netns: ns.path })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(setOffloads('mvt-a0', { lro: false } as never, { netns: ns.path })).rejects.toBeInstanceOf(TypeError);
    const nodev = await rejection(setOffloads('mvt-nope', { tx: false }, { netns: ns.path }));
    expect(nodev).toBeInstanceOf(MacvtapError);
    expect(nodev.code).toBe('ENODEV');
  });
});

describePrivileged('netlink socket pool and the create echo', () => {
  afterAll(() => destroyAll());

  it('does not keep a deleted namespace alive: its pooled sockets are dropped once ip netns del removes the path', async () => {
    const a = TestNetns.create();
    const b = TestNetns.create();
    try {
      // A veth across the two: the end in B disappears only when A is really freed (the kernel destroys A's end,
      // and with it the pair), which a netlink socket of A held in the pool would prevent.
      a.veth('mvt-x0', 'mvt-x1', b);
      for (let i = 0; i < 4; i++) await getLink('lo', { netns: a.path });
      a.destroy();
      let gone = false;
      for (let i = 0; i < 100 && !gone; i++) {
        // A pooled operation checks every entry's path, at most every 50 ms.
        await getLink('lo', { netns: b.path });
        gone = !b.ipLinks().some((l) => l.ifname === 'mvt-x1');
        if (!gone) await new Promise((r) => setTimeout(r, 20));
      }
      expect(gone).toBe(true);
    } finally {
      a.destroy();
      b.destroy();
    }
  });

  for (const echo of [true, false]) {
    it(`createMacvtap returns what getLink reports ${echo ? 'from the kernel\'s NLM_F_ECHO' : 'with the RTM_GETLINK fallback (MACVTAP_NO_NLM_ECHO=1)'}`, async () => {
      const ns = TestNetns.create();
      const saved = process.env.MACVTAP_NO_NLM_ECHO;
      try {
        if (!echo) process.env.MACVTAP_NO_NLM_ECHO = '1';
        ns.veth('mvt-l0', 'mvt-l1');
        const byName = await createMacvtap({ lower: 'mvt-l0', name: 'mvt-m0', mac: '02:00:00:00:00:51', group: 9, netns: ns.path });
        const lowerIndex = (await getLink('mvt-l0', { netns: ns.path })).ifindex;
        const byIndex = await createMacvtap({ lower: lowerIndex, name: 'mvt-m1', up: true, netns: ns.path });
        for (const created of [byName, byIndex]) {
          const again = await getLink(created.name, { netns: ns.path });
          // The kernel's link watcher may have set the operstate of the link created up in between.
          expect(['unknown', again.operstate]).toContain(created.operstate);
          expect({ ...created, operstate: again.operstate }).toEqual(again);
          expect(created.lower).toEqual({ ifindex: lowerIndex, name: 'mvt-l0', netnsid: null });
          expect(created.tap).not.toBeNull();
        }
        expect(byName.group).toBe(9);
        expect(byIndex.up).toBe(true);
        const missing = await rejection(createMacvtap({ lower: 'mvt-none', name: 'mvt-m2', netns: ns.path }));
        expect(missing).toBeInstanceOf(MacvtapError);
        expect(missing.code).toBe('ENODEV');
        expect(ns.ipLinks().some((l) => l.ifname === 'mvt-m2')).toBe(false);
      } finally {
        if (saved === undefined) delete process.env.MACVTAP_NO_NLM_ECHO;
        else process.env.MACVTAP_NO_NLM_ECHO = saved;
        ns.destroy();
      }
    });
  }
});
