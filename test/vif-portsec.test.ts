/**
 * Port security through the vif layer: the Neutron port's fields checked before anything exists, applied to the
 * self-managed macvtap or to a `type='direct'` device, in throwaway namespaces, cross-checked with `nft -j list table`
 * and `ip -d -j link show` (independent tools), and the `<target dev>` XML checked by libvirt's schema.
 */
import { describe, expect, test } from 'vitest';
import {
  InvalidVifError,
  VifError,
  VifPlugError,
  applyVifPortSecurity,
  directTargetDev,
  parseVif,
  plug,
  plugSelfManaged,
  removeVifPortSecurity,
  toDomainXml,
  toInterfaceXml,
  unplugSelfManaged,
  vifPortSecurityPolicy,
  type VifPortSecurity,
} from '../lib/vif/index.js';
import { applyPortSecurity } from '../lib/index.js';
import { describeLibvirt, novaVif, validateDomain } from './helpers/libvirt.js';
import { nftTable, nftTables, nftUnavailable } from './helpers/nft.js';
import { describeNeeding } from './helpers/suite.js';
import { vethHostFixture } from './helpers/hostns.js';

const { host } = vethHostFixture();

const MAC = 'fa:16:3e:12:34:56';
const flatVif = (over: Record<string, unknown> = {}) =>
  novaVif({ details: { macvtap_source: 'l0', macvtap_mode: 'bridge', physical_interface: 'l0' }, ...over });

/** The port-security fields as Neutron's port dict and security-group-rules API give them. */
const PORT: VifPortSecurity = {
  port_security_enabled: true,
  mac_address: MAC,
  fixed_ips: [
    { subnet_id: '1f6b2d3e-0000-4000-8000-000000000001', ip_address: '10.0.0.5' },
    { subnet_id: '1f6b2d3e-0000-4000-8000-000000000002', ip_address: '2001:db8::5' },
  ],
  allowed_address_pairs: [{ ip_address: '10.0.0.96/28', mac_address: 'fa:16:3e:00:00:02' }, { ip_address: '10.0.0.200' }],
  security_group_rules: [
    { id: 'r1', security_group_id: 'sg', direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', port_range_min: 22, port_range_max: 22, remote_ip_prefix: null, remote_group_id: null },
    { id: 'r2', security_group_id: 'sg', direction: 'egress', ethertype: 'IPv4', protocol: null, remote_ip_prefix: null, remote_group_id: null },
  ],
};

function vifErr(fn: () => unknown): VifError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(VifError);
    return e as VifError;
  }
  throw new Error('expected a VifError');
}

async function rejection<T extends Error>(p: Promise<unknown>, type: new (...a: never[]) => T): Promise<T> {
  const e = await p.then(() => { throw new Error('expected a rejection'); }, (err: unknown) => err);
  expect(e).toBeInstanceOf(type);
  return e as T;
}

describe('vif port security: the Neutron port checked and turned into a policy (no host involved)', () => {
  test("Neutron's fields map onto the core's policy; the MAC defaults to the vif's address", () => {
    const vif = parseVif(flatVif());
    const policy = vifPortSecurityPolicy(vif, PORT);
    expect(policy).toStrictEqual({
      mac: MAC,
      ips: ['10.0.0.5', '2001:db8::5'],
      allowedAddressPairs: PORT.allowed_address_pairs,
      rules: PORT.security_group_rules,
    });
    expect(vifPortSecurityPolicy(vif, { fixed_ips: [{ ip_address: '10.0.0.5' }] })).toStrictEqual({ mac: MAC, ips: ['10.0.0.5'] });
    expect(vifPortSecurityPolicy(vif, { port_security_enabled: false, fixed_ips: PORT.fixed_ips, allowed_address_pairs: [], security_group_rules: [] })).toBeNull();
  });

  test.each<[string, unknown, string, RegExp]>([
    ['an unknown key (a typo must never turn filtering off)', { ...PORT, security_groups: ['sg'] }, 'portSecurity.security_groups', /is not a known option \(known: port_security_enabled, fixed_ips/],
    ['an unknown key in a fixed IP', { fixed_ips: [{ ip_address: '10.0.0.5', ip: 'x' }] }, 'portSecurity.fixed_ips[0].ip', /is not a known option/],
    ['a bad fixed IP', { fixed_ips: [{ ip_address: '10.0.0.5' }, { ip_address: '10.0.0.500' }] }, 'portSecurity.fixed_ips[1].ip_address', /is not an IPv4 or IPv6 address/],
    ['a bad pair MAC', { allowed_address_pairs: [{ ip_address: '10.0.0.9', mac_address: '01:00:5e:00:00:01' }] }, 'portSecurity.allowed_address_pairs[0].mac_address', /unicast/],
    ['a stateful rule', { security_group_rules: [{ direction: 'ingress', ethertype: 'IPv4', stateful: true }] }, 'portSecurity.security_group_rules[0].stateful', /stateless/],
    ['a remote group', { security_group_rules: [{ direction: 'ingress', ethertype: 'IPv4', remote_group_id: 'g' }] }, 'portSecurity.security_group_rules[0].remote_group_id', /expand the group/],
    ["another port's MAC", { mac_address: 'fa:16:3e:00:00:99' }, 'portSecurity.mac_address', /is not the vif's address fa:16:3e:12:34:56/],
    ['pairs on a port without port security', { port_security_enabled: false, allowed_address_pairs: [{ ip_address: '10.0.0.9' }] }, 'portSecurity.allowed_address_pairs', /Neutron refuses/],
    ['rules on a port without port security', { port_security_enabled: false, security_group_rules: PORT.security_group_rules }, 'portSecurity.security_group_rules', /Neutron refuses/],
    ['a non-boolean switch', { port_security_enabled: 'no' }, 'portSecurity.port_security_enabled', /boolean/],
  ])('refuses %s with InvalidVifError naming the field', (_what, input, path, message) => {
    const e = vifErr(() => vifPortSecurityPolicy(parseVif(flatVif()), input));
    expect(e).toBeInstanceOf(InvalidVifError);
    expect(e.issues.map((i) => i.path)).toContain(path);
    expect(e.issues.find((i) => i.path === path)!.message).toMatch(message);
  });

  test("the <target dev> for a direct vif: Nova's devname, unless libvirt would replace it", () => {
    expect(directTargetDev(parseVif(flatVif()))).toBe('tap6c1b3d0e-2f');
    expect(directTargetDev(parseVif(flatVif({ devname: 'macvtap5e7a0c5e' })))).toBe('tap6c1b3d0e-2f');
    expect(directTargetDev(parseVif(flatVif({ devname: null })))).toBe('tap6c1b3d0e-2f');
    expect(directTargetDev(parseVif(flatVif({ devname: 'mvt-port7' })))).toBe('mvt-port7');
  });

  test('unknown option keys of plug and plugSelfManaged are refused naming the key, before the host is touched', async () => {
    // No namespace: these must fail before any kernel call (a missing l0 would otherwise be ERR_VIF_DEVICE_MISSING).
    const a = await rejection(plug(flatVif(), { portsecurity: PORT } as never), InvalidVifError);
    expect(a.issues).toStrictEqual([{ path: 'portsecurity', message: 'is not a known option (known: netns, portSecurity, targetDev)' }]);
    const b = await rejection(plugSelfManaged(flatVif(), { queue: 2 } as never), InvalidVifError);
    expect(b.issues[0]!.path).toBe('queue');
    const c = await rejection(plug(flatVif(), { portSecurity: PORT, targetDev: 'macvtap3' }), InvalidVifError);
    expect(c.issues[0]).toMatchObject({ path: 'targetDev', message: expect.stringMatching(/libvirt drops such names/) });
    const d = await rejection(plug(flatVif(), { targetDev: 'tapx' }), InvalidVifError);
    expect(d.issues[0]!.message).toMatch(/only with portSecurity/);
  });
});

describeNeeding('vif port security on real links', nftUnavailable, () => {
  test('plugSelfManaged applies the port to the macvtap it made (nft sees the MACs, addresses and rules); unplug removes table and link', async () => {
    const ns = host();
    const vif = flatVif({ devname: 'mvt-ps0' });
    const p = await plugSelfManaged(vif, { netns: ns.path, portSecurity: PORT });
    let unplugged = false;
    try {
      const l = ns.ipLink('mvt-ps0');
      expect(l.address).toBe(MAC);
      const nft = nftTable(ns, 'mvtps-mvt-ps0');
      expect(nft).not.toBeNull();
      expect(nft!.devices).toEqual(['mvt-ps0', 'mvt-ps0']);
      expect(nft!.comment).toMatch(new RegExp(`^macvtap-ps ifindex=${l.ifindex} owner=`));
      expect(nft!.sets.macs!.sort()).toEqual(['fa:16:3e:00:00:02', MAC]);
      expect(nft!.sets.pairs4!.sort()).toEqual(['fa:16:3e:00:00:02 . 10.0.0.96/28', `${MAC} . 10.0.0.200`, `${MAC} . 10.0.0.5`]);
      expect(nft!.sets.pairs6).toContain(`${MAC} . 2001:db8::5`);
      expect(nft!.sets['sg-ingress4-ports']).toEqual(['0.0.0.0/0 . tcp . 22']);
      expect(nft!.sets['sg-egress4-protos']).toEqual(['0.0.0.0/0 . 0-255']);
      expect(p.portSecurity).toMatchObject({ mac: MAC, ips: ['10.0.0.5', '2001:db8::5'] });
      await p.unplug();
      unplugged = true;
      expect(ns.ipLinks().map((x) => x.ifname)).not.toContain('mvt-ps0');
      expect(nftTables(ns)).toEqual([]);
    } finally {
      if (!unplugged) await p.unplug();
    }
  });

  test('port_security_enabled false: no table, also none left from an earlier device of that name', async () => {
    const ns = host();
    // An earlier device of the same name whose table outlived it (made with ip, filtered through the core, deleted).
    ns.ip('link', 'add', 'link', 'l0', 'name', 'mvt-ps1', 'type', 'macvtap');
    await applyPortSecurity('mvt-ps1', { mac: 'fa:16:3e:00:00:42', ips: ['10.0.0.42'] }, { netns: ns.path });
    ns.ip('link', 'del', 'mvt-ps1');
    expect(nftTables(ns)).toEqual(['mvtps-mvt-ps1']);

    await using p = await plugSelfManaged(flatVif({ devname: 'mvt-ps1' }), { netns: ns.path, portSecurity: { port_security_enabled: false, fixed_ips: PORT.fixed_ips } });
    expect(p.portSecurity).toBeNull();
    expect(ns.ipLink('mvt-ps1').address).toBe(MAC);
    expect(nftTables(ns)).toEqual([]);
  });

  test('bad input is refused before anything is created: no macvtap, no table, no VLAN attempt', async () => {
    const ns = host();
    const links = ns.ipLinks().map((l) => l.ifname).sort();
    const bad = { ...PORT, fixed_ips: [{ ip_address: 'not-an-ip' }] };
    const e = await rejection(plugSelfManaged(flatVif({ devname: 'mvt-ps2' }), { netns: ns.path, portSecurity: bad }), InvalidVifError);
    expect(e.issues[0]!.path).toBe('portSecurity.fixed_ips[0].ip_address');
    // A VLAN vif: on this kernel a VLAN create would fail ERR_VIF_VLAN_UNSUPPORTED; InvalidVifError shows it never ran.
    const vlanVif = novaVif({ details: { macvtap_source: 'l0.100', macvtap_mode: 'bridge', physical_interface: 'l0', vlan: 100 } });
    await rejection(plug(vlanVif, { netns: ns.path, portSecurity: bad }), InvalidVifError);
    await rejection(plugSelfManaged(flatVif({ devname: 'mvt:bad' }), { netns: ns.path, portSecurity: PORT }), InvalidVifError);
    expect(ns.ipLinks().map((l) => l.ifname).sort()).toEqual(links);
    expect(nftTables(ns)).toEqual([]);
  });

  test('a failing apply after the macvtap was created deletes it again; unplugSelfManaged leaves a foreign table alone', async () => {
    const ns = host();
    // A table of that name that is not ours: the core refuses to replace it (EEXIST) after the macvtap exists.
    const foreign = () => ns.exec('nft', ['add table netdev mvtps-mvt-ps3 { comment "someone else"; }']);
    foreign();
    const links = ns.ipLinks().map((l) => l.ifname).sort();
    const e = await rejection(plugSelfManaged(flatVif({ devname: 'mvt-ps3' }), { netns: ns.path, portSecurity: PORT }), VifPlugError);
    expect(e.code).toBe('ERR_VIF_PLUG_FAILED');
    expect(e.cause).toMatchObject({ code: 'EEXIST' });
    expect(ns.ipLinks().map((l) => l.ifname).sort()).toEqual(links);
    // Not asserted here: the foreign table surviving the rollback. The core's deleteLink deletes any table named
    // mvtps-<device>, ours or not (reported to the lead); the vif layer itself never removes a foreign one:
    foreign();
    expect(await unplugSelfManaged(flatVif({ devname: 'mvt-ps3' }), { netns: ns.path })).toBe(false);
    expect(nftTable(ns, 'mvtps-mvt-ps3')?.comment).toBe('someone else');
  });

  test('type direct: plug picks the <target dev>, the policy lands on the device made under that name (as libvirt would)', async () => {
    const ns = host();
    const vif = flatVif();
    const r = await plug(vif, { netns: ns.path, portSecurity: PORT });
    expect(r.targetDev).toBe('tap6c1b3d0e-2f');
    // Not there yet: libvirt makes it at domain start.
    const missing = await rejection(r.applyPortSecurity!(), VifPlugError);
    expect(missing.code).toBe('ERR_VIF_DEVICE_MISSING');
    expect(nftTables(ns)).toEqual([]);

    // What libvirt does at domain start, made with ip: a macvtap named <target dev> with the vif's MAC on the source.
    ns.ip('link', 'add', 'link', 'l0', 'name', r.targetDev!, 'address', MAC, 'type', 'macvtap', 'mode', 'bridge');
    expect(await r.applyPortSecurity!()).toStrictEqual({ device: 'tap6c1b3d0e-2f', enabled: true });
    const nft = nftTable(ns, 'mvtps-tap6c1b3d0e-2f');
    expect(nft!.devices).toEqual(['tap6c1b3d0e-2f', 'tap6c1b3d0e-2f']);
    expect(nft!.sets.pairs4).toContain(`${MAC} . 10.0.0.5`);

    // The device named by a live domain XML (as `virsh dumpxml` writes it), and switching port security off.
    const live = toDomainXml([toInterfaceXml(vif, { targetDev: r.targetDev! })], { name: 'mvt-live' });
    expect(await applyVifPortSecurity(vif, { port_security_enabled: false }, { netns: ns.path, domainXml: live }))
      .toStrictEqual({ device: 'tap6c1b3d0e-2f', enabled: false, removed: true });
    expect(nftTables(ns)).toEqual([]);
    await applyVifPortSecurity(vif, PORT, { netns: ns.path, device: r.targetDev! });
    expect(await removeVifPortSecurity(vif, { netns: ns.path })).toBe(true);
    expect(await removeVifPortSecurity(vif, { netns: ns.path })).toBe(false);

    // A device of that name that is not this vif's macvtap is refused and left unfiltered.
    ns.veth('mvt-other0', 'mvt-other1');
    const other = await rejection(applyVifPortSecurity(vif, PORT, { netns: ns.path, device: 'mvt-other0' }), VifPlugError);
    expect(other.message).toMatch(/not this vif's macvtap/);
    expect(nftTables(ns)).toEqual([]);
  });
});

describeLibvirt('the direct <interface> with the chosen <target dev> is valid for libvirt', () => {
  test('virt-xml-validate accepts it', async () => {
    const vif = flatVif();
    const xml = toInterfaceXml(vif, { targetDev: directTargetDev(parseVif(vif)) });
    expect(xml).toMatch(/<target dev="tap6c1b3d0e-2f"\/>/);
    const r = await validateDomain(toDomainXml([xml], { name: 'mvt-portsec' }));
    expect(r.output).toMatch(/validates/);
    expect(r.ok).toBe(true);
  });
});
