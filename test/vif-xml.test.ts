/**
 * `<interface>` XML: every element and option, hostile strings, round trips, the reader's tolerance, and finally
 * libvirt's own schema check (`virt-xml-validate`) of every document these tests produced.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import {
  InvalidVifError,
  VifXmlError,
  interfaceFromVif,
  interfaceToXml,
  parseDomainInterfaces,
  parseInterfaceXml,
  toDomainXml,
  toInterfaceXml,
  type InterfaceConfig,
  type InterfaceOptions,
} from '../lib/vif/index.js';
import { readXml, writeXml } from '../lib/vif/xml.js';
import { catchErr, describeLibvirt, novaVif, validateDomains } from './helpers/libvirt.js';

/** Every XML document produced below, validated by libvirt at the end of the file. */
const produced: Array<{ label: string; xml: string }> = [];
function keep(label: string, xml: string): string {
  produced.push({ label, xml });
  return xml;
}

function xmlFor(label: string, over: Record<string, unknown>, options?: InterfaceOptions): string {
  return keep(label, toInterfaceXml(novaVif(over), options));
}

/** Parses what we produced: the independent structural view is the DOM of a second parser (the one we ship). */
function parsed(xml: string): InterfaceConfig {
  return parseInterfaceXml(xml);
}

const noVlan = { details: { macvtap_source: 'eth0', macvtap_mode: 'bridge', physical_interface: 'eth0' } };

describe('toInterfaceXml: type direct', () => {
  test("the blueprint's minimal form: mac, source dev+mode, virtio model, nothing else", () => {
    const xml = xmlFor('minimal', {});
    expect(xml).toBe(
      [
        '<interface type="direct">',
        '  <mac address="fa:16:3e:12:34:56"/>',
        '  <source dev="eth0.100" mode="bridge"/>',
        '  <model type="virtio"/>',
        '</interface>',
      ].join('\n'),
    );
  });

  test.each(['bridge', 'vepa', 'private', 'passthrough'])('mode %s', (mode) => {
    const xml = xmlFor(`mode ${mode}`, { details: { macvtap_source: 'eth0', macvtap_mode: mode, physical_interface: 'eth0' } });
    expect(parsed(xml).source).toStrictEqual({ dev: 'eth0', mode });
    expect(xml).toContain(`mode="${mode}"`);
  });

  test('the MAC is written lower-case whatever the vif had', () => {
    expect(xmlFor('upper mac', { address: 'FA:16:3E:AB:CD:EF' })).toContain('<mac address="fa:16:3e:ab:cd:ef"/>');
  });

  test("no <mtu> by default: libvirt refuses it on direct (plug sets the VLAN device's MTU instead)", () => {
    expect(xmlFor('no mtu', {})).not.toContain('<mtu');
    const e = catchErr(() => toInterfaceXml(novaVif(), { mtu: 1400 }));
    expect(e).toBeInstanceOf(InvalidVifError);
    expect(e.issues[0]).toMatchObject({ path: 'mtu' });
  });

  test('targetDev names the macvtap libvirt will create', () => {
    const xml = xmlFor('direct target', {}, { targetDev: 'macvtap7' });
    expect(parsed(xml).target).toStrictEqual({ dev: 'macvtap7' });
    expect(xml).toContain('<target dev="macvtap7"/>');
  });
});

describe('toInterfaceXml: multiqueue and <driver>', () => {
  test.each([
    [4, undefined, 4],
    [16, 8, 8],
    [300, undefined, 256],
    [2, 2, 2],
  ])('vcpus %i, maxTapQueues %s → queues %i with the vhost driver', (vcpus, maxTapQueues, queues) => {
    const xml = xmlFor(`mq ${vcpus}/${maxTapQueues}`, {}, { vcpus, ...(maxTapQueues ? { maxTapQueues } : {}) });
    expect(parsed(xml).driver).toStrictEqual({ name: 'vhost', queues });
    expect(xml).toContain(`<driver name="vhost" queues="${queues}"/>`);
  });

  test('one vCPU (or a ceiling of 1) is single-queue: no <driver> at all', () => {
    expect(xmlFor('mq 1', {}, { vcpus: 1 })).not.toContain('<driver');
    expect(xmlFor('mq cap 1', {}, { vcpus: 8, maxTapQueues: 1 })).not.toContain('<driver');
  });

  test('driverName qemu and rx_queue_size', () => {
    const xml = xmlFor('driver qemu', {}, { vcpus: 2, driverName: 'qemu', rxQueueSize: 512 });
    expect(xml).toContain('<driver name="qemu" queues="2" rx_queue_size="512"/>');
    expect(parsed(xml).driver).toStrictEqual({ name: 'qemu', queues: 2, rxQueueSize: 512 });
  });

  test('host and guest offloads, every attribute, on and off', () => {
    const xml = xmlFor('offloads', {}, {
      hostOffloads: { csum: true, gso: false, tso4: true, tso6: false, ecn: true, ufo: false, mrgRxbuf: true },
      guestOffloads: { csum: false, tso4: true, tso6: false, ecn: true, ufo: false },
    });
    expect(xml).toContain('<host csum="on" gso="off" tso4="on" tso6="off" ecn="on" ufo="off" mrg_rxbuf="on"/>');
    expect(xml).toContain('<guest csum="off" tso4="on" tso6="off" ecn="on" ufo="off"/>');
    expect(parsed(xml).driver).toStrictEqual({
      host: { csum: true, gso: false, tso4: true, tso6: false, ecn: true, ufo: false, mrgRxbuf: true },
      guest: { csum: false, tso4: true, tso6: false, ecn: true, ufo: false },
    });
  });

  test('refused: bad vcpus, rx_queue_size not 256/512/1024, driver options on a non-virtio model', () => {
    for (const vcpus of [0, -1, 1.5]) expect(catchErr(() => toInterfaceXml(novaVif(), { vcpus })).issues[0]!.path).toBe('vcpus');
    expect(catchErr(() => toInterfaceXml(novaVif(), { maxTapQueues: 257 })).issues[0]!.path).toBe('maxTapQueues');
    expect(catchErr(() => toInterfaceXml(novaVif(), { rxQueueSize: 300 })).issues[0]!.path).toBe('driver.rxQueueSize');
    expect(catchErr(() => toInterfaceXml(novaVif(), { model: 'e1000', vcpus: 4 })).issues[0]!.path).toBe('driver');
  });

  test('other models are written as asked', () => {
    expect(parsed(xmlFor('model e1000e', {}, { model: 'e1000e' })).model).toBe('e1000e');
    expect(parsed(xmlFor('model rtl8139', {}, { model: 'rtl8139' })).model).toBe('rtl8139');
  });
});

describe('toInterfaceXml: <bandwidth>', () => {
  test("Nova's quota keys land on inbound/outbound", () => {
    const xml = xmlFor('quota', {}, {
      quota: {
        'quota:vif_inbound_average': '1000',
        'quota:vif_inbound_peak': '2000',
        'quota:vif_inbound_burst': '512',
        'quota:vif_outbound_average': '800',
        'quota:vif_outbound_peak': '900',
        'quota:vif_outbound_burst': '128',
      },
    });
    expect(xml).toContain('<inbound average="1000" peak="2000" burst="512"/>');
    expect(xml).toContain('<outbound average="800" peak="900" burst="128"/>');
  });

  test('explicit bandwidth overrides the quota per attribute; one direction alone is fine', () => {
    const xml = xmlFor('bw merge', {}, { quota: { 'quota:vif_inbound_average': '10', 'quota:vif_inbound_peak': '20' }, bandwidth: { inbound: { peak: 30 } } });
    expect(parsed(xml).bandwidth).toStrictEqual({ inbound: { average: 10, peak: 30 } });
    expect(parsed(xmlFor('bw out', {}, { bandwidth: { outbound: { average: 5 } } })).bandwidth).toStrictEqual({ outbound: { average: 5 } });
  });

  test('refused: floor (libvirt: type network only), peak without average, zero', () => {
    expect(catchErr(() => toInterfaceXml(novaVif(), { quota: { 'quota:vif_inbound_floor': '5', 'quota:vif_inbound_average': '9' } })).issues[0]!.path).toBe('bandwidth.inbound.floor');
    expect(catchErr(() => toInterfaceXml(novaVif(), { bandwidth: { outbound: { peak: 5 } } })).issues[0]!.path).toBe('bandwidth.outbound.average');
    expect(catchErr(() => toInterfaceXml(novaVif(), { bandwidth: { inbound: { average: 0 } } })).issues[0]!.path).toBe('bandwidth.inbound.average');
  });
});

describe('toInterfaceXml: link state, trustGuestRxFilters, virtualport, boot order, alias', () => {
  test('link state up and down', () => {
    expect(xmlFor('link up', {}, { linkState: 'up' })).toContain('<link state="up"/>');
    expect(parsed(xmlFor('link down', {}, { linkState: 'down' })).linkState).toBe('down');
  });

  test('trustGuestRxFilters yes and no, an attribute of <interface>', () => {
    expect(xmlFor('trust yes', {}, { trustGuestRxFilters: true })).toMatch(/^<interface type="direct" trustGuestRxFilters="yes">/);
    expect(parsed(xmlFor('trust no', {}, { trustGuestRxFilters: false })).trustGuestRxFilters).toBe(false);
  });

  test('802.1Qbg from the vif qbg_params, all four parameters', () => {
    const qbg = { managerid: 11, typeid: 1193046, typeidversion: 2, instanceid: '09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f' };
    const xml = xmlFor('qbg', { qbg_params: qbg, details: { macvtap_source: 'eth0', macvtap_mode: 'vepa', physical_interface: 'eth0' } });
    expect(xml).toContain('<virtualport type="802.1Qbg">');
    expect(xml).toContain('<parameters managerid="11" typeid="1193046" typeidversion="2" instanceid="09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f"/>');
    expect(parsed(xml).virtualport).toStrictEqual({ type: '802.1Qbg', parameters: qbg });
  });

  test('802.1Qbh from options overrides the vif; null drops the vif one', () => {
    const xml = xmlFor('qbh', { qbh_params: { profileid: 'from-vif' } }, { virtualport: { type: '802.1Qbh', parameters: { profileid: 'finance' } } });
    expect(parsed(xml).virtualport).toStrictEqual({ type: '802.1Qbh', parameters: { profileid: 'finance' } });
    expect(xmlFor('qbh null', { qbh_params: { profileid: 'x' } }, { virtualport: null })).not.toContain('virtualport');
    expect(parsed(xmlFor('qbh bare', {}, { virtualport: { type: '802.1Qbh' } })).virtualport).toStrictEqual({ type: '802.1Qbh' });
  });

  test('boot order and a user alias', () => {
    const xml = xmlFor('boot alias', {}, { bootOrder: 3, alias: 'ua-net-6c1b3d0e' });
    expect(xml).toContain('<boot order="3"/>');
    expect(xml).toContain('<alias name="ua-net-6c1b3d0e"/>');
    expect(catchErr(() => toInterfaceXml(novaVif(), { bootOrder: 0 })).issues[0]!.path).toBe('bootOrder');
  });
});

describe('toInterfaceXml: the unmanaged type ethernet form', () => {
  test("target dev managed='no', MTU from network.meta.mtu, no source", () => {
    const xml = xmlFor('ethernet', {}, { form: 'ethernet', targetDev: 'mvt-vif0' });
    expect(xml).toBe(
      [
        '<interface type="ethernet">',
        '  <mac address="fa:16:3e:12:34:56"/>',
        '  <target dev="mvt-vif0" managed="no"/>',
        '  <model type="virtio"/>',
        '  <mtu size="1450"/>',
        '</interface>',
      ].join('\n'),
    );
  });

  test('mtu overridden or dropped; multiqueue and bandwidth work here too', () => {
    const c = parsed(xmlFor('ethernet mq', {}, { form: 'ethernet', targetDev: 'mvt1', mtu: 9000, vcpus: 4, bandwidth: { inbound: { average: 100 } } }));
    expect(c).toStrictEqual({
      type: 'ethernet',
      mac: 'fa:16:3e:12:34:56',
      target: { dev: 'mvt1', managed: false },
      model: 'virtio',
      driver: { name: 'vhost', queues: 4 },
      bandwidth: { inbound: { average: 100 } },
      mtu: 9000,
    });
    expect(xmlFor('ethernet no mtu', {}, { form: 'ethernet', targetDev: 'mvt1', mtu: null })).not.toContain('<mtu');
  });

  test("the vif's qbh/qbg params are not applied (libvirt has no virtualport on ethernet)", () => {
    expect(xmlFor('ethernet qbh', { qbh_params: { profileid: 'p' } }, { form: 'ethernet', targetDev: 'x' })).not.toContain('virtualport');
  });

  test('refused: no targetDev, an explicit virtualport, trustGuestRxFilters', () => {
    expect(catchErr(() => toInterfaceXml(novaVif(), { form: 'ethernet' })).issues[0]!.path).toBe('targetDev');
    expect(catchErr(() => toInterfaceXml(novaVif(), { form: 'ethernet', targetDev: 'x', virtualport: { type: '802.1Qbh' } })).issues[0]!.path).toBe('virtualport');
    expect(catchErr(() => toInterfaceXml(novaVif(), { form: 'ethernet', targetDev: 'x', trustGuestRxFilters: true })).issues[0]!.path).toBe('trustGuestRxFilters');
  });
});

describe('hostile strings', () => {
  const hostile = ['a"b', "a'b", 'a<b', 'a>b', 'a&b', 'a&amp;b', 'a\nb', 'a\rb', 'a\tb', 'a b', 'a/b', 'a]]>b', '<x/>', '\u0000'];

  test.each(hostile)('device names %j are refused with our error before any XML', (s) => {
    for (const over of [
      { details: { macvtap_source: s, macvtap_mode: 'bridge', physical_interface: 'eth0' } },
      { details: { macvtap_source: 'eth0', macvtap_mode: 'bridge', physical_interface: s } },
      { devname: s },
    ]) {
      expect(catchErr(() => toInterfaceXml(novaVif(over)))).toBeInstanceOf(InvalidVifError);
    }
    expect(catchErr(() => toInterfaceXml(novaVif(), { targetDev: s }))).toBeInstanceOf(InvalidVifError);
    expect(catchErr(() => toInterfaceXml(novaVif(), { form: 'ethernet', targetDev: s }))).toBeInstanceOf(InvalidVifError);
  });

  test.each(hostile)('aliases %j are refused (libvirt user aliases are ua-[A-Za-z0-9_.-]+)', (s) => {
    const e = catchErr(() => toInterfaceXml(novaVif(), { alias: `ua-${s}` }));
    expect(e.issues[0]!.path).toBe('alias');
  });

  test("free-text attribute values are escaped, survive libvirt's schema and round-trip exactly", () => {
    // profileid is libvirt's one free-form attribute here (≤ 39 characters, any text).
    for (const profileid of [`"'<>&`, 'a&amp;b', '&x;', '&#10;&#x41;', '&lt;tag&gt;', '<interface type="x">', "q'uo\"te", ']]>&#10;', 'ü→✓ unicode']) {
      const xml = xmlFor(`profileid ${profileid}`, { qbh_params: { profileid } });
      expect(parsed(xml).virtualport).toStrictEqual({ type: '802.1Qbh', parameters: { profileid } });
    }
    const raw = xmlFor('profileid raw', { qbh_params: { profileid: `a"b<c&d>e'f` } });
    expect(raw).toContain('profileid="a&quot;b&lt;c&amp;d&gt;e\'f"');
  });

  test('control characters in free text are refused: an attribute cannot carry them through a parser', () => {
    for (const profileid of ['a\nb', 'a\rb', 'a\tb', 'a\u0001b']) {
      expect(catchErr(() => toInterfaceXml(novaVif({ qbh_params: { profileid } })))).toBeInstanceOf(InvalidVifError);
    }
  });

  test('a hostile domain name is escaped as text and read back by libvirt-shaped parsing', () => {
    const name = `vm "1" <&> 'x' ]]>`;
    const xml = keep('hostile domain name', toDomainXml([interfaceFromVif(novaVif())], { name }));
    expect(xml).toContain('<name>vm "1" &lt;&amp;&gt; \'x\' ]]&gt;</name>');
    for (const bad of ['a\nb', '', 'x\u0000']) {
      expect(catchErr(() => toDomainXml([], { name: bad }))).toBeInstanceOf(VifXmlError);
    }
  });
});

/** What libxml2 (an independent parser) reads at `xpath` in `xml`; fails the test when xmllint calls it ill-formed. */
function xmllintValue(xml: string, xpath: string): string {
  const wellFormed = spawnSync('xmllint', ['--noout', '-'], { input: xml, encoding: 'utf8' });
  expect(wellFormed.status, `xmllint --noout: ${wellFormed.stderr}\n${xml}`).toBe(0);
  const r = spawnSync('xmllint', ['--xpath', `string(${xpath})`, '-'], { input: xml, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.replace(/\n$/, ''); // xmllint ends what it prints with a newline
}

describeLibvirt('escaping: written once, read back exactly, by our reader and by libxml2', () => {
  // Each of XML's five special characters, alone and together, and text that already looks escaped: a second
  // escaping pass (or a missing one) would show as a difference.
  const values = ['&', '<', '>', '"', "'", `&<>"'`, 'a&amp;b', '&lt;&gt;', '&#10;', '&#x26;', '&quot;&apos;', ']]>', '<x a="1"/>', "it's \"q\""];

  test.each(values)('%j as an attribute value (profileid) and as text (domain name)', (value) => {
    const xml = toDomainXml([interfaceFromVif(novaVif({ qbh_params: { profileid: value } }))], { name: value });
    // Each special character is written as exactly one reference (the apostrophe needs none inside "…").
    expect(xml).toContain(`profileid="${value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')}"`);
    expect(xml).toContain(`<name>${value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')}</name>`);
    expect(xmllintValue(xml, '//parameters/@profileid')).toBe(value);
    expect(xmllintValue(xml, '/domain/name')).toBe(value);
    expect(parseDomainInterfaces(xml)[0]!.virtualport).toStrictEqual({ type: '802.1Qbh', parameters: { profileid: value } });
    const name = readXml(xml).children.find((c) => 'name' in c && c.name === 'name');
    expect(name && 'children' in name ? name.children : undefined).toStrictEqual([{ text: value }]);
  });

  test('whitespace characters in attributes survive as references (tab, newline, carriage return)', () => {
    const value = 'a\tb\nc\rd & "e"';
    const xml = writeXml({ name: 'x', attrs: { v: value }, children: [{ text: 'f\rg <h>' }] });
    expect(xml).toBe('<x v="a&#9;b&#10;c&#13;d &amp; &quot;e&quot;">f&#13;g &lt;h&gt;</x>');
    expect(xmllintValue(xml, '/x/@v')).toBe(value);
    expect(xmllintValue(xml, '/x')).toBe('f\rg <h>');
    expect(readXml(xml)).toStrictEqual({ name: 'x', attrs: { v: value }, children: [{ text: 'f\rg <h>' }] });
  });
});

describe('round trip: parseInterfaceXml(interfaceToXml(x)) deep-equals x', () => {
  const direct: InterfaceConfig = {
    type: 'direct',
    trustGuestRxFilters: true,
    mac: 'fa:16:3e:00:00:01',
    source: { dev: 'eth0.100', mode: 'passthrough' },
    target: { dev: 'macvtap3' },
    model: 'virtio',
    driver: {
      name: 'vhost',
      queues: 8,
      rxQueueSize: 1024,
      host: { csum: true, gso: true, tso4: false, tso6: true, ecn: false, ufo: true, mrgRxbuf: false },
      guest: { csum: true, tso4: true, tso6: false, ecn: false, ufo: true },
    },
    bandwidth: { inbound: { average: 1, peak: 2, burst: 3 }, outbound: { average: 4294967295 } },
    linkState: 'down',
    virtualport: { type: '802.1Qbh', parameters: { profileid: `"'<&>` } },
    bootOrder: 1,
    alias: 'ua-a.b_c-d',
  };
  const ethernet: InterfaceConfig = {
    type: 'ethernet',
    mac: '02:00:00:00:00:01',
    target: { dev: 'mvt%0', managed: false },
    model: 'virtio-non-transitional',
    driver: { queues: 2 },
    bandwidth: { outbound: { average: 7, burst: 9 } },
    mtu: 68,
    linkState: 'up',
    bootOrder: 4294967295,
  };
  ethernet.target!.dev = 'mvt-0';

  test.each([
    ['direct, every option', direct],
    ['ethernet, every option it allows', ethernet],
    ['direct, minimal', { type: 'direct', mac: 'fa:16:3e:00:00:02', source: { dev: 'e', mode: 'vepa' } } as InterfaceConfig],
    ['ethernet, minimal (managed yes)', { type: 'ethernet', mac: 'fa:16:3e:00:00:03', target: { dev: 't', managed: true } } as InterfaceConfig],
  ])('%s', (label, config) => {
    const xml = keep(`round trip ${label}`, interfaceToXml(config));
    expect(parseInterfaceXml(xml)).toStrictEqual(config);
    expect(interfaceToXml(parseInterfaceXml(xml))).toBe(xml);
  });

  test('from a vif: parse(toInterfaceXml(vif, o)) equals interfaceFromVif(vif, o), both forms', () => {
    const options: InterfaceOptions[] = [
      {},
      { vcpus: 4, quota: { 'quota:vif_outbound_average': '5' }, linkState: 'up', alias: 'ua-x' },
      { form: 'ethernet', targetDev: 'mvt9', vcpus: 3, hostOffloads: { csum: false } },
    ];
    for (const o of options) {
      const vif = novaVif({ qbg_params: { managerid: 1 } });
      expect(parseInterfaceXml(keep('vif round trip', toInterfaceXml(vif, o)))).toStrictEqual(interfaceFromVif(vif, o));
    }
  });
});

describe('parseInterfaceXml: tolerant like libvirt', () => {
  // Shaped like `virsh dumpxml` of a running guest: single quotes, libvirt-assigned alias, PCI address, elements in
  // libvirt's own order (not ours), attributes we do not model, a comment and an XML declaration.
  const live = `<?xml version="1.0" encoding="UTF-8"?>
<!-- from virsh dumpxml -->
<interface type='direct' trustGuestRxFilters='no'>
  <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
  <alias name='net0'/>
  <rom bar='off'/>
  <driver name='vhost' queues='2' txmode='iothread' iommu='on'>
    <host csum='off'/>
  </driver>
  <model type='virtio'/>
  <target dev='macvtap0'/>
  <source dev='eth0.100' mode='bridge' extra='ignored'/>
  <mac address='FA:16:3E:12:34:56' type='static'/>
  <coalesce><rx><frames max='7'/></rx></coalesce>
  <future-element><nested/></future-element>
</interface>`;

  test('element order, unknown elements and attributes, and runtime aliases are ignored', () => {
    expect(parseInterfaceXml(live)).toStrictEqual({
      type: 'direct',
      trustGuestRxFilters: false,
      mac: 'fa:16:3e:12:34:56',
      source: { dev: 'eth0.100', mode: 'bridge' },
      target: { dev: 'macvtap0' },
      model: 'virtio',
      driver: { name: 'vhost', queues: 2, host: { csum: false } },
    });
  });

  test('libvirt hex for 802.1Qbg numbers is read', () => {
    const xml = `<interface type='direct'><mac address='fa:16:3e:00:00:01'/><source dev='e' mode='vepa'/>
      <virtualport type='802.1Qbg'><parameters managerid='0x0b' typeid='0x123456' typeidversion='2'/></virtualport></interface>`;
    expect(parseInterfaceXml(xml).virtualport).toStrictEqual({ type: '802.1Qbg', parameters: { managerid: 11, typeid: 0x123456, typeidversion: 2 } });
  });

  test('character references and entities in attribute values are decoded', () => {
    const xml = `<interface type='direct'><mac address='fa:16:3e:00:00:01'/><source dev='e' mode='bridge'/>
      <virtualport type='802.1Qbh'><parameters profileid='&#x41;&#66;&quot;&apos;&lt;&gt;&amp;'/></virtualport></interface>`;
    expect(parseInterfaceXml(xml).virtualport).toStrictEqual({ type: '802.1Qbh', parameters: { profileid: `AB"'<>&` } });
  });

  test('parseDomainInterfaces reads direct and ethernet interfaces of a domain, skipping other types', () => {
    const dom = toDomainXml([
      interfaceFromVif(novaVif()),
      interfaceFromVif(novaVif({ address: 'fa:16:3e:00:00:09' }), { form: 'ethernet', targetDev: 'mvt2' }),
    ]).replace('<devices>', "<devices><interface type='bridge'><source bridge='br0'/></interface>");
    const got = parseDomainInterfaces(dom);
    expect(got.map((c) => [c.type, c.mac])).toEqual([['direct', 'fa:16:3e:12:34:56'], ['ethernet', 'fa:16:3e:00:00:09']]);
  });

  const badDocs: Array<[string, string, RegExp]> = [
    ['not well-formed', "<interface type='direct'><mac address='fa:16:3e:00:00:01'></interface>", /not well-formed/],
    ['unclosed', "<interface type='direct'>", /not well-formed/],
    ['empty', '', /not well-formed/],
    ['an undefined entity', "<interface type='direct' x='&nbsp;'/>", /undefined entity/],
    ['a bare ampersand', "<interface type='direct' x='a & b'/>", /bare "&"/],
    ['a DOCTYPE with entities', `<!DOCTYPE i [<!ENTITY e "x">]><interface type='direct'/>`, /DOCTYPE/],
    ['another root', "<domain type='qemu'/>", /expected an <interface>/],
    ['type bridge', "<interface type='bridge'><source bridge='br0'/></interface>", /unsupported interface type "bridge"/],
    ['no type', '<interface/>', /unsupported interface type null/],
    ['direct without source', "<interface type='direct'><mac address='fa:16:3e:00:00:01'/></interface>", /source/],
    ['no mac', "<interface type='direct'><source dev='e' mode='bridge'/></interface>", /mac/],
    ['a multicast mac', "<interface type='direct'><mac address='01:00:5e:00:00:01'/><source dev='e' mode='bridge'/></interface>", /unicast/],
    ['queues not a number', "<interface type='direct'><mac address='fa:16:3e:00:00:01'/><source dev='e' mode='bridge'/><driver queues='many'/></interface>", /driver\.queues/],
    ['a link state libvirt lacks', "<interface type='direct'><mac address='fa:16:3e:00:00:01'/><source dev='e' mode='bridge'/><link state='sideways'/></interface>", /linkState/],
    ['managed=maybe', "<interface type='ethernet'><mac address='fa:16:3e:00:00:01'/><target dev='t' managed='maybe'/></interface>", /target\.managed/],
    ['an offload value libvirt lacks', "<interface type='direct'><mac address='fa:16:3e:00:00:01'/><source dev='e' mode='bridge'/><driver><host csum='yes'/></driver></interface>", /driver\.host\.csum/],
    ['a hostile source dev', "<interface type='direct'><mac address='fa:16:3e:00:00:01'/><source dev='e&quot;x' mode='bridge'/></interface>", /source\.dev/],
  ];
  test.each(badDocs)('%s → VifXmlError', (_label, xml, message) => {
    const e = catchErr(() => parseInterfaceXml(xml));
    expect(e).toBeInstanceOf(VifXmlError);
    expect(e.code).toBe('ERR_VIF_XML');
    expect(e.message).toMatch(message);
  });

  test('non-strings are refused', () => {
    expect(catchErr(() => parseInterfaceXml(42 as unknown as string))).toBeInstanceOf(VifXmlError);
  });
});

describe('toDomainXml', () => {
  test('wraps configs and XML strings; strings are embedded exactly as given', () => {
    const s = toInterfaceXml(novaVif(), { vcpus: 2 });
    const xml = keep('domain of two', toDomainXml([s, interfaceFromVif(novaVif(noVlan), { form: 'ethernet', targetDev: 'mvt5' })], {
      name: 'guest-1',
      uuid: '2b4f1c0e-4f7e-4d39-a7a3-8c1c6f0e9b11',
      memoryMiB: 128,
      vcpus: 2,
      type: 'kvm',
    }));
    expect(xml).toMatch(/^<domain type="kvm">\n {2}<name>guest-1<\/name>\n {2}<uuid>2b4f1c0e-4f7e-4d39-a7a3-8c1c6f0e9b11<\/uuid>\n {2}<memory unit="MiB">128<\/memory>\n {2}<vcpu>2<\/vcpu>/);
    const ifaces = parseDomainInterfaces(xml);
    expect(ifaces[0]).toStrictEqual(parseInterfaceXml(s));
    expect(ifaces[1]).toMatchObject({ type: 'ethernet', target: { dev: 'mvt5', managed: false } });
  });

  test('refuses a bad interface string and bad options with our errors', () => {
    expect(catchErr(() => toDomainXml(['<interface type="bridge"/>']))).toBeInstanceOf(VifXmlError);
    expect(catchErr(() => toDomainXml([{ type: 'direct', mac: 'fa:16:3e:00:00:01' } as InterfaceConfig]))).toBeInstanceOf(InvalidVifError);
    const e = catchErr(() => toDomainXml([], { uuid: 'x', memoryMiB: 0, vcpus: 0 }));
    expect(e.issues.map((i) => i.path)).toEqual(['uuid', 'memoryMiB', 'vcpus']);
  });
});

describeLibvirt('libvirt accepts what we produce (virt-xml-validate … domain)', () => {
  test('every XML document produced above, each wrapped in a domain', async () => {
    expect(produced.length).toBeGreaterThan(40);
    const domains = produced.map(({ xml }) => (xml.startsWith('<domain') ? xml : toDomainXml([xml])));
    const results = await validateDomains(domains);
    const failed = results.map((r, i) => ({ ...r, label: produced[i]!.label })).filter((r) => !r.ok);
    expect(failed.map((f) => `${f.label}: ${f.output}\n${f.xml}`)).toEqual([]);
  });

  test('the check has teeth: documents libvirt refuses fail it', async () => {
    const good = toDomainXml([toInterfaceXml(novaVif())]);
    const results = await validateDomains([
      good.replace('fa:16:3e:12:34:56', '01:00:5e:00:00:01'), // multicast MAC
      good.replace('mode="bridge"', 'mode="passthru"'), // the kernel's word, not libvirt's
      good.replace('dev="eth0.100"', 'dev="eth 0"'), // not a libvirt deviceName
      good.replace('<model type="virtio"/>', '<model type="virtio"/><mtu size="x"/>'),
    ]);
    expect(results.map((r) => r.ok)).toEqual([false, false, false, false]);
  });
});
