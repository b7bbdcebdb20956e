/**
 * The vif dict: what is accepted, how it is normalized, and which of our errors each kind of bad input raises.
 */
import { describe, expect, test } from 'vitest';
import {
  InvalidVifError,
  VifDetailsMissingMacvtapParameters,
  bandwidthFromQuota,
  kernelMacvtapMode,
  parseVif,
} from '../lib/vif/index.js';
import { catchErr, novaVif } from './helpers/libvirt.js';

describe('parseVif: accepted input', () => {
  test('a full Nova vif is normalized: Nova key names, lower-case MAC, no nulls, extra keys dropped', () => {
    const vif = parseVif(novaVif({ address: 'FA:16:3E:12:34:56' }));
    expect(vif).toStrictEqual({
      id: '6c1b3d0e-2f4a-4b8e-9a51-0d3c2b1a0f9e',
      address: 'fa:16:3e:12:34:56',
      type: 'macvtap',
      vnic_type: 'normal',
      devname: 'tap6c1b3d0e-2f',
      network: { id: 'a1b2', label: 'private', meta: { mtu: 1450 }, subnets: [] },
      details: { macvtap_source: 'eth0.100', macvtap_mode: 'bridge', physical_interface: 'eth0', vlan: 100 },
    });
  });

  test("the blueprint's names macvtap_src and mode are aliases of macvtap_source and macvtap_mode", () => {
    const vif = parseVif(novaVif({ details: { macvtap_src: 'eth1', mode: 'vepa', physical_interface: 'eth1' } }));
    expect(vif.details).toStrictEqual({ macvtap_source: 'eth1', macvtap_mode: 'vepa', physical_interface: 'eth1' });
  });

  test('an alias that agrees with the Nova key is fine; one that disagrees is an error naming both', () => {
    expect(parseVif(novaVif({ details: { macvtap_src: 'eth1', macvtap_source: 'eth1', mode: 'private', macvtap_mode: 'private', physical_interface: 'eth1' } })).details.macvtap_source).toBe('eth1');
    const e = catchErr(() => parseVif(novaVif({ details: { macvtap_src: 'eth2', macvtap_source: 'eth1', macvtap_mode: 'bridge', physical_interface: 'eth1' } })));
    expect(e).toBeInstanceOf(InvalidVifError);
    expect(e.issues).toContainEqual({ path: 'details.macvtap_src', message: expect.stringContaining('disagrees with macvtap_source') });
  });

  test('every libvirt mode is accepted; the kernel spelling passthru becomes passthrough', () => {
    for (const mode of ['bridge', 'vepa', 'private', 'passthrough'] as const) {
      expect(parseVif(novaVif({ details: { macvtap_source: 'eth0', macvtap_mode: mode, physical_interface: 'eth0' } })).details.macvtap_mode).toBe(mode);
    }
    expect(parseVif(novaVif({ details: { macvtap_source: 'eth0', mode: 'passthru', physical_interface: 'eth0' } })).details.macvtap_mode).toBe('passthrough');
    expect(kernelMacvtapMode('passthrough')).toBe('passthru');
    expect(kernelMacvtapMode('vepa')).toBe('vepa');
  });

  test("VLAN ids: Neutron's digit strings become numbers; null and absence mean no VLAN", () => {
    expect(parseVif(novaVif({ details: { macvtap_source: 'eth0.7', macvtap_mode: 'bridge', physical_interface: 'eth0', vlan: '7' } })).details.vlan).toBe(7);
    expect(parseVif(novaVif({ details: { macvtap_source: 'eth0.4094', macvtap_mode: 'bridge', physical_interface: 'eth0', vlan: 4094 } })).details.vlan).toBe(4094);
    expect(parseVif(novaVif({ details: { macvtap_source: 'eth0', macvtap_mode: 'bridge', physical_interface: 'eth0', vlan: null } })).details).not.toHaveProperty('vlan');
    expect(parseVif(novaVif({ details: { macvtap_source: 'eth0', macvtap_mode: 'bridge', physical_interface: 'eth0' } })).details).not.toHaveProperty('vlan');
  });

  test('vnic_type defaults to normal; network.meta and subnets are optional; mtu null means unknown', () => {
    const { vnic_type: _v, ...rest } = novaVif({ network: { meta: { mtu: null } } });
    const vif = parseVif(rest);
    expect(vif.vnic_type).toBe('normal');
    expect(vif.network).toStrictEqual({ meta: {} });
    expect(parseVif(novaVif({ network: {} })).network).toStrictEqual({ meta: {} });
  });

  test('qbh_params and qbg_params are kept typed', () => {
    const qbg = { managerid: 12, typeid: 0x123456, typeidversion: 1, instanceid: '09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f' };
    expect(parseVif(novaVif({ qbg_params: qbg })).qbg_params).toStrictEqual(qbg);
    expect(parseVif(novaVif({ qbh_params: { profileid: 'finance' } })).qbh_params).toStrictEqual({ profileid: 'finance' });
  });

  test('parsing is idempotent: a parsed vif parses to itself', () => {
    const once = parseVif(novaVif({ details: { macvtap_src: 'eth0.9', mode: 'passthru', physical_interface: 'eth0', vlan: '9' } }));
    expect(parseVif(once)).toStrictEqual(once);
  });
});

describe('parseVif: refused input, with our errors', () => {
  test("missing details raise VifDetailsMissingMacvtapParameters naming every missing key, like Nova's", () => {
    const e = catchErr(() => parseVif(novaVif({ details: { macvtap_mode: 'bridge' } })));
    expect(e).toBeInstanceOf(VifDetailsMissingMacvtapParameters);
    expect(e.code).toBe('ERR_VIF_DETAILS_MISSING_MACVTAP_PARAMETERS');
    expect((e as VifDetailsMissingMacvtapParameters).missingParams).toEqual(['macvtap_source', 'physical_interface']);
    expect(e.message).toContain('macvtap_source, physical_interface');
    expect(e.message).toContain('6c1b3d0e-2f4a-4b8e-9a51-0d3c2b1a0f9e');
    expect(e.vifId).toBe('6c1b3d0e-2f4a-4b8e-9a51-0d3c2b1a0f9e');
  });

  test('no details at all (or null values) means all three are missing', () => {
    for (const details of [undefined, null, {}, { macvtap_source: null, macvtap_mode: null, physical_interface: null }]) {
      const e = catchErr(() => parseVif(novaVif({ details })));
      expect((e as VifDetailsMissingMacvtapParameters).missingParams).toEqual(['macvtap_source', 'macvtap_mode', 'physical_interface']);
    }
  });

  test('missing details are reported together with any other problem', () => {
    const e = catchErr(() => parseVif(novaVif({ address: 'nope', details: { macvtap_source: 'eth0' } })));
    expect(e).toBeInstanceOf(VifDetailsMissingMacvtapParameters);
    expect(e.issues.map((i) => i.path)).toEqual(['details.macvtap_mode', 'details.physical_interface', 'address']);
  });

  const bad: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['a bad MAC', { address: 'fa:16:3e:12:34' }, 'address', /MAC address/],
    ['a multicast MAC', { address: '01:00:5e:00:00:01' }, 'address', /unicast/],
    ['an all-zero MAC', { address: '00:00:00:00:00:00' }, 'address', /all zero/],
    ['a MAC with a newline', { address: 'fa:16:3e:12:34:56\n' }, 'address', /MAC address/],
    ['an unknown mode', { details: { macvtap_source: 'eth0', macvtap_mode: 'bridged', physical_interface: 'eth0' } }, 'details.macvtap_mode', /unknown macvtap mode "bridged"/],
    ['VLAN 0', { details: { macvtap_source: 'eth0.0', macvtap_mode: 'bridge', physical_interface: 'eth0', vlan: 0 } }, 'details.vlan', /1–4094/],
    ['VLAN 4095', { details: { macvtap_source: 'e.4095', macvtap_mode: 'bridge', physical_interface: 'e', vlan: '4095' } }, 'details.vlan', /1–4094/],
    ['VLAN 1.5', { details: { macvtap_source: 'e.1', macvtap_mode: 'bridge', physical_interface: 'e', vlan: 1.5 } }, 'details.vlan', /integer/],
    ['VLAN "ten"', { details: { macvtap_source: 'e.1', macvtap_mode: 'bridge', physical_interface: 'e', vlan: 'ten' } }, 'details.vlan', /VLAN id/],
    ['a 16-byte source name', { details: { macvtap_source: 'a'.repeat(16), macvtap_mode: 'bridge', physical_interface: 'e' } }, 'details.macvtap_source', /15 bytes/],
    ['a source name with a quote', { details: { macvtap_source: "eth0'", macvtap_mode: 'bridge', physical_interface: 'e' } }, 'details.macvtap_source', /may only contain/],
    ['a source name with <', { details: { macvtap_source: 'eth<0', macvtap_mode: 'bridge', physical_interface: 'e' } }, 'details.macvtap_source', /may only contain/],
    ['a physical interface with &', { details: { macvtap_source: 'e', macvtap_mode: 'bridge', physical_interface: 'a&b' } }, 'details.physical_interface', /may only contain/],
    ['a physical interface with a newline', { details: { macvtap_source: 'e', macvtap_mode: 'bridge', physical_interface: 'eth0\n' } }, 'details.physical_interface', /may only contain/],
    ['a source name with a colon (kernel alias syntax)', { details: { macvtap_source: 'eth0:1', macvtap_mode: 'bridge', physical_interface: 'e' } }, 'details.macvtap_source', /may only contain/],
    ['a source name "."', { details: { macvtap_source: '.', macvtap_mode: 'bridge', physical_interface: 'e' } }, 'details.macvtap_source', /"\."/],
    ['a devname with a space', { devname: 'tap 1' }, 'devname', /may only contain/],
    ['another vif type', { type: 'ovs' }, 'type', /"macvtap", not "ovs"/],
    ['an SR-IOV vnic_type', { vnic_type: 'direct' }, 'vnic_type', /SR-IOV/],
    ['an empty id', { id: '' }, 'id', /empty/],
    ['an MTU of 20', { network: { meta: { mtu: 20 } } }, 'network.meta.mtu', /at least 68/],
    ['a profileid with a newline', { qbh_params: { profileid: 'a\nb' } }, 'qbh_params.profileid', /control characters/],
    ['a 40-character profileid', { qbh_params: { profileid: 'p'.repeat(40) } }, 'qbh_params.profileid', /39/],
    ['a qbg instanceid that is no UUID', { qbg_params: { instanceid: 'x' } }, 'qbg_params.instanceid', /UUID/],
  ];
  test.each(bad)('%s is an InvalidVifError at the right path', (_name, over, path, message) => {
    const e = catchErr(() => parseVif(novaVif(over)));
    expect(e).toBeInstanceOf(InvalidVifError);
    expect(e.code).toBe('ERR_VIF_INVALID');
    const issue = e.issues.find((i) => i.path === path);
    expect(issue, JSON.stringify(e.issues)).toBeDefined();
    expect(issue!.message).toMatch(message);
    expect(e.message).toContain(path);
  });

  test('non-objects are refused with InvalidVifError', () => {
    for (const input of [null, undefined, 42, 'vif', [novaVif()]]) {
      expect(catchErr(() => parseVif(input))).toBeInstanceOf(InvalidVifError);
    }
  });
});

describe("bandwidthFromQuota: Nova's flavor quota keys", () => {
  test('quota:vif_* keys map onto inbound/outbound; other extra specs are ignored', () => {
    expect(
      bandwidthFromQuota({
        'quota:vif_inbound_average': '1000',
        'quota:vif_inbound_peak': '2000',
        'quota:vif_inbound_burst': 512,
        'quota:vif_outbound_average': 800,
        'quota:vif_outbound_peak': '900',
        'quota:vif_outbound_burst': '128',
        'quota:cpu_shares': '1024',
        'hw:vif_multiqueue_enabled': 'true',
      }),
    ).toStrictEqual({ inbound: { average: 1000, peak: 2000, burst: 512 }, outbound: { average: 800, peak: 900, burst: 128 } });
  });

  test('the quota: scope may be left out; floor has a key too', () => {
    expect(bandwidthFromQuota({ vif_inbound_floor: '10', vif_inbound_average: '20' })).toStrictEqual({ inbound: { floor: 10, average: 20 } });
  });

  test('no bandwidth key gives undefined', () => {
    expect(bandwidthFromQuota({ 'quota:disk_read_bytes_sec': '1' })).toBeUndefined();
  });

  test('a value that is not a positive 32-bit integer is an error naming the key', () => {
    for (const v of ['0', '-1', 'fast', '1.5', 2 ** 32, '']) {
      const e = catchErr(() => bandwidthFromQuota({ 'quota:vif_outbound_burst': v }));
      expect(e).toBeInstanceOf(InvalidVifError);
      expect(e.issues[0]!.path).toBe('quota:vif_outbound_burst');
    }
  });
});
