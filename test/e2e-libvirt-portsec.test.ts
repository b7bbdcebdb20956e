/**
 * The `type='direct'` port-security flow against a real libvirtd (private, in a throwaway namespace): plug chooses the
 * `<target dev>`, libvirt creates the macvtap under that name at `virsh create --paused`, the policy is applied from the
 * live domain XML before the guest would run, and nft (independent of the library) shows it on that device. The domain
 * never runs (paused, no guest kernel): no CPU is spent on a guest.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseDomainInterfaces, plug, toDomainXml, toInterfaceXml } from '../lib/vif/index.js';
import { novaVif } from './helpers/libvirt.js';
import { freshTapIndex, Libvirtd, libvirtdUnavailable } from './helpers/libvirtd.js';
import { nftTable, nftTables, nftUnavailable } from './helpers/nft.js';
import { describeNeeding } from './helpers/suite.js';
import { makeTestbed, type Testbed } from '../bench/testbed/netns.js';

const missing = libvirtdUnavailable() ?? nftUnavailable;

describeNeeding('e2e: port security on the macvtap libvirt creates (type direct)', missing, () => {
  let tb: Testbed;
  let daemon: Libvirtd;
  beforeAll(async () => {
    tb = makeTestbed(62);
    daemon = await Libvirtd.start(tb.host.name);
  }, 120_000);
  afterAll(async () => {
    await daemon?.stop();
    tb?.destroy();
  }, 60_000);

  it('libvirt names its macvtap after the chosen <target dev>; the policy lands on it while the domain is paused', async () => {
    const mac = 'fa:16:3e:62:00:0a';
    const vif = novaVif({ address: mac, details: { macvtap_source: tb.lower, macvtap_mode: 'bridge', physical_interface: tb.lower } });
    const port = { fixed_ips: [{ ip_address: '10.200.62.10', subnet_id: 's' }], security_group_rules: [] };
    const plugged = await plug(vif, { netns: tb.host.path, portSecurity: port });
    expect(plugged.targetDev).toBe('tap6c1b3d0e-2f');

    const name = `mvt-ps-${process.pid}`;
    const file = join(daemon.dir, `${name}.xml`);
    writeFileSync(file, toDomainXml([toInterfaceXml(vif, { targetDev: plugged.targetDev! })], { name, memoryMiB: 64 }));
    // libvirt opens /dev/tap<ifindex> blindly: make the next index one no other namespace's macvtap holds.
    freshTapIndex(tb.host.name);
    daemon.virsh('create', file, '--paused');
    try {
      const live = daemon.virsh('dumpxml', name);
      expect(parseDomainInterfaces(live)).toMatchObject([{ type: 'direct', mac, target: { dev: 'tap6c1b3d0e-2f' } }]);
      const link = tb.host.ipLink('tap6c1b3d0e-2f');
      expect(link.linkinfo?.info_kind).toBe('macvtap');
      expect(link.address).toBe(mac);

      expect(await plugged.applyPortSecurity!({ domainXml: live })).toStrictEqual({ device: 'tap6c1b3d0e-2f', enabled: true });
      const nft = nftTable(tb.host, 'mvtps-tap6c1b3d0e-2f');
      expect(nft!.devices).toEqual(['tap6c1b3d0e-2f', 'tap6c1b3d0e-2f']);
      expect(nft!.comment).toMatch(new RegExp(`ifindex=${link.ifindex} `));
      expect(nft!.sets.pairs4).toEqual([`${mac} . 10.200.62.10`]);
      expect(daemon.domainState(name)).toBe('paused');
    } finally {
      await daemon.destroyDomain(name);
    }
    // libvirt deleted its macvtap; what is left of the table is the driver's to remove (removeVifPortSecurity) or gc's.
    expect(tb.host.ipLinks().map((l) => l.ifname)).not.toContain('tap6c1b3d0e-2f');
    expect(nftTables(tb.host).filter((t) => t !== 'mvtps-tap6c1b3d0e-2f')).toEqual([]);
  }, 120_000);
});
