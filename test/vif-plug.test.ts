/**
 * plug / unplug / removeVlan / plugSelfManaged in throwaway namespaces, cross-checked with `ip -d -j link show`.
 *
 * This host's kernel has no 802.1Q: there, a VLAN plug must fail with our error and leave nothing behind. The VLAN
 * behaviour tests are written in full and skip with the reason "kernel lacks 802.1Q" when a probe (an `ip link add …
 * type vlan` in a throwaway namespace) fails; on a kernel with VLAN support (the second-kernel VM) they run.
 */
import { expect, test } from 'vitest';
import { MacvtapError } from '../lib/index.js';
import {
  InvalidVifError,
  VifPlugError,
  parseInterfaceXml,
  plug,
  plugSelfManaged,
  removeVlan,
  toDomainXml,
  unplug,
  unplugSelfManaged,
  type VifInput,
} from '../lib/vif/index.js';
import { buildUdpFrame, vnetHdr } from '../bench/testbed/frames.js';
import { libvirtValidateUnavailable, novaVif, validateDomain } from './helpers/libvirt.js';
import { describePrivileged } from './helpers/suite.js';
import { vethHostFixture } from './helpers/hostns.js';
import { makeTestbed, type TestNetns, vlanUnsupported as vlanUnsupportedProbe } from '../bench/testbed/netns.js';
import { UdpListener } from '../bench/testbed/peer.js';

const vlanUnsupported: string | null = vlanUnsupportedProbe();

const { host, track } = vethHostFixture();

function vlanVif(over: { id?: string; address?: string; vlan?: number | string; mtu?: number; source?: string } = {}): VifInput {
  return novaVif({
    ...(over.id ? { id: over.id } : {}),
    ...(over.address ? { address: over.address } : {}),
    network: { meta: over.mtu === undefined ? {} : { mtu: over.mtu } },
    details: { macvtap_source: over.source ?? 'l0.100', macvtap_mode: 'bridge', physical_interface: 'l0', vlan: over.vlan ?? 100 },
  });
}

const linkNames = (ns: TestNetns): string[] => ns.ipLinks().map((l) => l.ifname).sort();

async function rejection(p: Promise<unknown>): Promise<VifPlugError> {
  const e = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(VifPlugError);
  return e as VifPlugError;
}

describePrivileged('vif plug: VLAN networks', () => {
  test(`on a kernel without 802.1Q a VLAN plug fails with our error and leaves nothing behind${vlanUnsupported === null ? ' [skipped: kernel has 802.1Q]' : ''}`, async (ctx) => {
    if (vlanUnsupported === null) ctx.skip('kernel has 802.1Q: this is the no-VLAN path');
    const ns = host();
    const before = linkNames(ns);
    const e = await rejection(plug(vlanVif({ mtu: 1400 }), { netns: ns.path }));
    expect(e.code).toBe('ERR_VIF_VLAN_UNSUPPORTED');
    expect(e.message).toMatch(/kernel lacks 802\.1Q/);
    expect(e.device).toBe('l0.100');
    expect(e.vifId).toBe('6c1b3d0e-2f4a-4b8e-9a51-0d3c2b1a0f9e');
    expect(e.cause).toBeInstanceOf(MacvtapError);
    expect(e.cause).toMatchObject({ code: 'EOPNOTSUPP', syscall: 'RTM_NEWLINK' });
    expect(linkNames(ns)).toEqual(before);
    expect(ns.ipLink('l0').mtu).toBe(1500);
  });

  test('a VLAN device is created with the right id, lower device and MTU, and up', async (ctx) => {
    if (vlanUnsupported) ctx.skip(vlanUnsupported);
    const ns = host();
    const r = await plug(vlanVif({ mtu: 1400 }), { netns: ns.path });
    expect(r.vlanCreated).toBe(true);
    const l = ns.ipLink('l0.100');
    expect(l.linkinfo?.info_kind).toBe('vlan');
    expect(l.linkinfo?.info_data?.id).toBe(100);
    expect(l.linkinfo?.info_data?.protocol).toBe('802.1Q');
    expect(l.link).toBe('l0');
    expect(l.mtu).toBe(1400);
    expect(l.flags).toContain('UP');
    expect(r.source).toMatchObject({ name: 'l0.100', ifindex: l.ifindex, mtu: 1400, up: true, vlan: { id: 100 } });
  });

  test("Neutron's digit-string VLAN id works the same", async (ctx) => {
    if (vlanUnsupported) ctx.skip(vlanUnsupported);
    const ns = host();
    await plug(vlanVif({ vlan: '4094', source: 'l0.4094' }), { netns: ns.path });
    expect(ns.ipLink('l0.4094').linkinfo?.info_data?.id).toBe(4094);
  });

  test('re-plug is idempotent: same device, nothing new', async (ctx) => {
    if (vlanUnsupported) ctx.skip(vlanUnsupported);
    const ns = host();
    await plug(vlanVif({ mtu: 1400 }), { netns: ns.path });
    const first = ns.ipLink('l0.100');
    const names = linkNames(ns);
    const again = await plug(vlanVif({ mtu: 1400 }), { netns: ns.path });
    expect(again.vlanCreated).toBe(false);
    expect(ns.ipLink('l0.100').ifindex).toBe(first.ifindex);
    expect(linkNames(ns)).toEqual(names);
  });

  test("re-plug sets the network's MTU again (it may have changed), and brings a downed VLAN back up", async (ctx) => {
    if (vlanUnsupported) ctx.skip(vlanUnsupported);
    const ns = host();
    await plug(vlanVif({ mtu: 1400 }), { netns: ns.path });
    ns.ip('link', 'set', 'l0.100', 'down');
    await plug(vlanVif({ mtu: 1300 }), { netns: ns.path });
    expect(ns.ipLink('l0.100').mtu).toBe(1300);
    expect(ns.ipLink('l0.100').flags).toContain('UP');
  });

  test('a pre-existing VLAN device with the right id on the right lower (made by ip) is reused', async (ctx) => {
    if (vlanUnsupported) ctx.skip(vlanUnsupported);
    const ns = host();
    ns.ip('link', 'add', 'link', 'l0', 'name', 'l0.100', 'type', 'vlan', 'id', '100');
    const r = await plug(vlanVif({ mtu: 1450 }), { netns: ns.path });
    expect(r.vlanCreated).toBe(false);
    expect(ns.ipLink('l0.100')).toMatchObject({ mtu: 1450, flags: expect.arrayContaining(['UP']) });
  });

  test('a conflicting VLAN (other id, or other lower device) is refused and left untouched', async (ctx) => {
    if (vlanUnsupported) ctx.skip(vlanUnsupported);
    const ns = host();
    ns.veth('m0', 'm1');
    ns.ip('link', 'add', 'link', 'l0', 'name', 'l0.100', 'type', 'vlan', 'id', '200');
    let e = await rejection(plug(vlanVif({ mtu: 1400 }), { netns: ns.path }));
    expect(e.code).toBe('ERR_VIF_VLAN_CONFLICT');
    expect(e.message).toMatch(/VLAN 200 on l0, not VLAN 100 on l0/);
    expect(ns.ipLink('l0.100')).toMatchObject({ mtu: 1500, linkinfo: { info_data: { id: 200 } } });
    ns.ip('link', 'del', 'l0.100');
    ns.ip('link', 'add', 'link', 'm0', 'name', 'l0.100', 'type', 'vlan', 'id', '100');
    e = await rejection(plug(vlanVif(), { netns: ns.path }));
    expect(e.code).toBe('ERR_VIF_VLAN_CONFLICT');
    expect(ns.ipLink('l0.100').link).toBe('m0');
  });

  test('concurrent plugs of many vifs on one VLAN: one device, created once, no error', async (ctx) => {
    if (vlanUnsupported) ctx.skip(vlanUnsupported);
    const ns = host();
    const vifs = Array.from({ length: 12 }, (_, i) =>
      vlanVif({ id: `port-${i}`, address: `fa:16:3e:00:01:${i.toString(16).padStart(2, '0')}`, mtu: 1400 }),
    );
    const results = await Promise.all(vifs.map((v) => plug(v, { netns: ns.path })));
    expect(results.filter((r) => r.vlanCreated)).toHaveLength(1);
    expect(new Set(results.map((r) => r.source.ifindex)).size).toBe(1);
    expect(ns.ipLinks().filter((l) => l.linkinfo?.info_kind === 'vlan').map((l) => l.ifname)).toEqual(['l0.100']);
    expect(ns.ipLink('l0.100').mtu).toBe(1400);
  });

  test('removeVlan deletes it once, then reports there is none; unplug deletes nothing', async (ctx) => {
    if (vlanUnsupported) ctx.skip(vlanUnsupported);
    const ns = host();
    await plug(vlanVif(), { netns: ns.path });
    const names = linkNames(ns);
    await unplug(vlanVif(), { netns: ns.path });
    expect(linkNames(ns)).toEqual(names);
    expect(await removeVlan(vlanVif(), { netns: ns.path })).toBe(true);
    expect(linkNames(ns)).not.toContain('l0.100');
    expect(await removeVlan(vlanVif(), { netns: ns.path })).toBe(false);
  });
});

describePrivileged('vif plug: conflicts and flat networks (any kernel)', () => {
  test('a non-VLAN link named like the VLAN device is refused before any create, and removeVlan will not delete it', async () => {
    const ns = host();
    ns.veth('l0.100', 'peer100');
    const e = await rejection(plug(vlanVif(), { netns: ns.path }));
    expect(e.code).toBe('ERR_VIF_VLAN_CONFLICT');
    expect(e.message).toMatch(/l0\.100 exists but is a veth link/);
    const r = await rejection(removeVlan(vlanVif(), { netns: ns.path }));
    expect(r.code).toBe('ERR_VIF_VLAN_CONFLICT');
    expect(ns.ipLink('l0.100').linkinfo?.info_kind).toBe('veth');
  });

  test('without a VLAN, plug brings the source device up and changes nothing else', async () => {
    const ns = host();
    ns.ip('link', 'set', 'l0', 'down');
    const names = linkNames(ns);
    const vif = novaVif({ details: { macvtap_src: 'l0', mode: 'vepa', physical_interface: 'l0' } });
    const r = await plug(vif, { netns: ns.path });
    expect(r).toMatchObject({ vlanCreated: false, source: { name: 'l0', up: true } });
    expect(ns.ipLink('l0').flags).toContain('UP');
    expect(ns.ipLink('l0').mtu).toBe(1500);
    expect(linkNames(ns)).toEqual(names);
    // Idempotent, and unplug leaves it all alone.
    await plug(vif, { netns: ns.path });
    await unplug(vif, { netns: ns.path });
    expect(linkNames(ns)).toEqual(names);
    expect(ns.ipLink('l0').flags).toContain('UP');
  });

  test('a missing source device is our ERR_VIF_DEVICE_MISSING', async () => {
    const ns = host();
    const e = await rejection(plug(novaVif({ details: { macvtap_source: 'nope0', macvtap_mode: 'bridge', physical_interface: 'nope0' } }), { netns: ns.path }));
    expect(e.code).toBe('ERR_VIF_DEVICE_MISSING');
    expect(e.device).toBe('nope0');
  });

  test('a bad vif is refused before the kernel is touched', async () => {
    const ns = host();
    const names = linkNames(ns);
    await expect(plug(novaVif({ details: { macvtap_source: 'l0', physical_interface: 'l0', macvtap_mode: 'bridge', vlan: 4095 } }), { netns: ns.path })).rejects.toBeInstanceOf(InvalidVifError);
    await expect(plugSelfManaged(novaVif({ details: { macvtap_source: 'l0', physical_interface: 'l0', macvtap_mode: 'bridge' } }), { netns: ns.path, queues: 0 })).rejects.toBeInstanceOf(InvalidVifError);
    await expect(plugSelfManaged(novaVif({ details: { macvtap_source: 'l0', physical_interface: 'l0', macvtap_mode: 'bridge' } }), { netns: ns.path, xml: { mtu: 20 } })).rejects.toBeInstanceOf(InvalidVifError);
    expect(linkNames(ns)).toEqual(names);
  });
});

describePrivileged('vif plugSelfManaged: the macvtap is ours', () => {
  test('creates the macvtap with the vif MAC on the source, opens the queues, returns matching XML; a queue carries a real frame to the peer', async () => {
    const bed = makeTestbed(7);
    track(bed);
    const mac = 'fa:16:3e:07:00:0a';
    const vif = novaVif({
      address: mac,
      devname: 'mvt-vif0',
      network: { meta: { mtu: 1500 } },
      details: { macvtap_source: bed.lower, macvtap_mode: 'bridge', physical_interface: bed.lower },
    });
    const p = await plugSelfManaged(vif, { netns: bed.host.path, queues: 2, xml: { linkState: 'up' } });
    try {
      // The independent view of what was made.
      const l = bed.host.ipLink('mvt-vif0');
      expect(l.linkinfo?.info_kind).toBe('macvtap');
      expect(l.linkinfo?.info_data?.mode).toBe('bridge');
      expect(l.address).toBe(mac);
      expect(l.link).toBe(bed.lower);
      expect(l.flags).toContain('UP');
      expect(p.link).toMatchObject({ name: 'mvt-vif0', ifindex: l.ifindex, mac });
      expect(p.queues).toHaveLength(2);
      expect(p.queues.every((q) => q.fd >= 0 && q.vnetHdr && q.ifindex === l.ifindex)).toBe(true);

      // The XML names it, unmanaged, multiqueue with as many queues as were opened.
      expect(p.config).toStrictEqual({
        type: 'ethernet',
        mac,
        target: { dev: 'mvt-vif0', managed: false },
        model: 'virtio',
        driver: { name: 'vhost', queues: 2 },
        mtu: 1500,
        linkState: 'up',
      });
      expect(parseInterfaceXml(p.xml)).toStrictEqual(p.config);
      if (!libvirtValidateUnavailable) expect((await validateDomain(toDomainXml([p.xml]))).output).toMatch(/validates/);

      // A frame written on the first queue (virtio-net header, then Ethernet/IPv4/UDP) reaches a socket in the peer.
      const listener = await UdpListener.start(bed.peer, 40007);
      try {
        const payload = Buffer.from(`vif ${vif.id} self-managed`);
        const frame = buildUdpFrame({ srcMac: mac, dstMac: bed.peerMac, srcIp: '10.200.7.10', dstIp: bed.peerIp, srcPort: 50007, dstPort: 40007, payload });
        const written = p.queues[0]!.write(Buffer.concat([vnetHdr(), frame]));
        expect(written).toBe(10 + frame.length);
        const got = await listener.waitFor((d) => d.data.equals(payload), 5000);
        expect(got).toMatchObject({ from: '10.200.7.10', port: 50007 });
      } finally {
        listener.stop();
      }
    } finally {
      await p.unplug();
    }
    expect(p.queues.every((q) => q.closed)).toBe(true);
    expect(bed.host.ipLinks().map((x) => x.ifname)).not.toContain('mvt-vif0');
    await p.unplug(); // idempotent
  });

  test('a name template, await using, and the default of one queue (no multiqueue in the XML)', async () => {
    const ns = host();
    const vif = novaVif({ devname: null, details: { macvtap_source: 'l0', macvtap_mode: 'private', physical_interface: 'l0' } });
    let name: string;
    {
      await using p = await plugSelfManaged(vif, { netns: ns.path, name: 'mvtq%d', xml: { hostOffloads: { csum: true } } });
      name = p.link.name;
      expect(name).toMatch(/^mvtq\d+$/);
      expect(ns.ipLink(name).linkinfo?.info_data?.mode).toBe('private');
      expect(p.queues).toHaveLength(1);
      expect(p.config.driver).toStrictEqual({ host: { csum: true } });
    }
    expect(linkNames(ns)).not.toContain(name);
  });

  test('concurrent self-managed plugs of many vifs on one (downed) source device all succeed', async () => {
    const ns = host();
    ns.ip('link', 'set', 'l0', 'down');
    const vifs = Array.from({ length: 8 }, (_, i) =>
      novaVif({
        id: `port-${i}`,
        devname: `mvt-c${i}`,
        address: `fa:16:3e:00:02:${i.toString(16).padStart(2, '0')}`,
        details: { macvtap_source: 'l0', macvtap_mode: 'bridge', physical_interface: 'l0' },
      }),
    );
    const plugs = await Promise.all(vifs.map((v) => plugSelfManaged(v, { netns: ns.path, queues: 2 })));
    try {
      expect(ns.ipLink('l0').flags).toContain('UP');
      for (const [i, p] of plugs.entries()) {
        const l = ns.ipLink(`mvt-c${i}`);
        expect(l).toMatchObject({ address: `fa:16:3e:00:02:${i.toString(16).padStart(2, '0')}`, link: 'l0' });
        expect(p.queues.map((q) => q.ifindex)).toEqual([l.ifindex, l.ifindex]);
        expect(p.config.target).toStrictEqual({ dev: `mvt-c${i}`, managed: false });
      }
    } finally {
      await Promise.all(plugs.map((p) => p.unplug()));
    }
    expect(ns.ipLinks().filter((l) => l.linkinfo?.info_kind === 'macvtap')).toEqual([]);
  });

  test('when the macvtap cannot be made (name taken), our error and nothing new is left', async () => {
    const ns = host();
    ns.veth('taken0', 'taken1');
    const names = linkNames(ns);
    const e = await rejection(plugSelfManaged(novaVif({ devname: 'taken0', details: { macvtap_source: 'l0', macvtap_mode: 'bridge', physical_interface: 'l0' } }), { netns: ns.path }));
    expect(e.code).toBe('ERR_VIF_PLUG_FAILED');
    expect(e.cause).toMatchObject({ code: 'EEXIST' });
    expect(linkNames(ns)).toEqual(names);
  });

  test('unplugSelfManaged removes a macvtap left by a driver that lost its handle, and nothing else', async () => {
    const ns = host();
    const vif = novaVif({ devname: 'mvt-lost0', address: 'fa:16:3e:00:00:77', details: { macvtap_source: 'l0', macvtap_mode: 'bridge', physical_interface: 'l0' } });
    const p = await plugSelfManaged(vif, { netns: ns.path });
    await Promise.all(p.queues.map((q) => q.close()));
    ns.veth('mvt-other0', 'mvt-other1');
    const e = await rejection(unplugSelfManaged(vif, { netns: ns.path, name: 'mvt-other0' }));
    expect(e.code).toBe('ERR_VIF_PLUG_FAILED');
    expect(linkNames(ns)).toContain('mvt-other0');
    expect(await unplugSelfManaged(vif, { netns: ns.path })).toBe(true);
    expect(linkNames(ns)).not.toContain('mvt-lost0');
    expect(await unplugSelfManaged(vif, { netns: ns.path })).toBe(false);
  });
});
