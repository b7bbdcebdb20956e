/**
 * The differential test: `novaInterfaceXml` against Nova's own `LibvirtGenericVIFDriver.get_config()` (Debian's
 * python3-nova 26, Zed) over a generated corpus — vif details (flat, VLAN, every mode, missing keys, both vnic types),
 * flavor extra specs (the six quota keys in every combination, multiqueue), image properties (models, multiqueue),
 * vCPUs 1–512 and the `[libvirt]` options — all rendered by Nova in ONE Python process. Case by case: the same error
 * class (and Nova's fields), or the same `<interface>` compared as a set of elements with their attributes. libvirt's
 * schema (`virt-xml-validate`, batched: every interface in one domain document) accepts all of ours and all of Nova's
 * except where Nova's is the invalid one, and there it must refuse Nova's. Neutron's real `bind_port()` output (flat,
 * VLAN, its hashed VLAN device names) goes through `parseVif`, `toInterfaceXml` and `novaInterfaceXml`.
 */
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { MAX_TAP_QUEUES, UnsupportedVirtType, VifError, novaInterfaceXml, parseVif, toInterfaceXml } from '../lib/vif/index.js';
import { novaKernelQueueCap } from '../lib/vif/nova.js';
import { readXml, type XmlElement } from '../lib/vif/xml.js';
import { libvirtValidateUnavailable, validateDomains } from './helpers/libvirt.js';
import { describeNova, runOracle, type NeutronBindCase, type NovaConfigCase, type NovaError, type OracleResponse } from './helpers/nova.js';
import { prng } from './helpers/prng.js';

const SEED = Number(process.env.MVT_NOVA_SEED ?? 17);
const rand = prng(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const chance = (p: number): boolean => rand() < p;

const QUOTA = ['vif_inbound_average', 'vif_inbound_peak', 'vif_inbound_burst', 'vif_outbound_average', 'vif_outbound_peak', 'vif_outbound_burst'];
const MODES = ['bridge', 'vepa', 'private', 'passthrough', 'passthru'];
const IMAGE_MODELS = [undefined, 'virtio', 'e1000', 'e1000e', 'rtl8139', 'ne2k_pci', 'pcnet', 'lan9118', 'spapr-vlan', 'vmxnet3', 'netfront', 'sriov'];
const BOOL_STRINGS = ['true', 'false', 'True', 'FALSE', '1', '0', 'yes', 'no', 'on', 'off'];
const VCPUS = [1, 2, 3, 4, 8, 16, 255, 256, 257, 300, 512];

function vifDict(i: number, o: { vlan?: number; mode?: string; drop?: string[]; vnicType?: string } = {}): Record<string, unknown> {
  const vlan = o.vlan;
  const phys = pick(['eth0', 'ens3', 'enp0s31f6', 'bond0']);
  const details: Record<string, unknown> = {
    macvtap_source: vlan === undefined ? phys : `${phys}.${vlan}`,
    macvtap_mode: o.mode ?? 'bridge',
    physical_interface: phys,
    port_filter: false,
    connectivity: 'l2',
    ...(vlan === undefined ? {} : { vlan }),
  };
  for (const k of o.drop ?? []) delete details[k];
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  return {
    id: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
    address: `fa:16:3e:${hex((i >> 16) & 255)}:${hex((i >> 8) & 255)}:${hex(i & 255)}`,
    type: 'macvtap',
    vnic_type: o.vnicType ?? 'normal',
    network: { id: 'net-1', bridge: null, label: 'private', meta: {}, subnets: [] },
    details,
  };
}

function quotaValue(): string {
  return chance(0.1) ? '0' : String(1 + Math.floor(rand() * 1_000_000));
}

/** The corpus: systematic parts first (every quota combination, every mode, errors), then random cases. */
function corpus(): NovaConfigCase[] {
  const cases: NovaConfigCase[] = [];
  const base = (i: number): NovaConfigCase => ({ vif: vifDict(i, { vlan: 100 }), vcpus: 4, extra_specs: {}, image_properties: {}, conf: {}, virt_type: 'kvm' });
  // Every subset of the six quota keys.
  for (let mask = 0; mask < 64; mask++) {
    const c = base(cases.length);
    QUOTA.forEach((k, b) => { if (mask & (1 << b)) c.extra_specs[`quota:${k}`] = quotaValue(); });
    cases.push(c);
  }
  // Every mode, flat and VLAN, both vnic types.
  for (const mode of MODES) for (const vlan of [undefined, 1, 4094]) for (const vnicType of ['normal', 'macvtap']) {
    cases.push({ ...base(cases.length), vif: vifDict(cases.length, { mode, vlan, vnicType }) });
  }
  // Each missing-details combination (Nova's VifDetailsMissingMacvtapParameters lists them in its order).
  const required = ['macvtap_source', 'macvtap_mode', 'physical_interface'];
  for (let mask = 1; mask < 8; mask++) {
    cases.push({ ...base(cases.length), vif: vifDict(cases.length, { drop: required.filter((_, b) => mask & (1 << b)) }) });
  }
  // Multiqueue: flavor × image × vCPUs on kvm (conflicts included).
  for (const flavor of [undefined, 'true', 'false']) for (const image of [undefined, true, false]) for (const vcpus of [1, 2, 300]) {
    const c = { ...base(cases.length), vcpus };
    if (flavor !== undefined) c.extra_specs['hw:vif_multiqueue_enabled'] = flavor;
    if (image !== undefined) c.image_properties.hw_vif_multiqueue_enabled = image;
    cases.push(c);
  }
  // Random cases over everything.
  while (cases.length < 420) {
    const i = cases.length;
    const extra: Record<string, unknown> = {};
    for (const k of QUOTA) if (chance(0.3)) extra[`quota:${k}`] = quotaValue();
    if (chance(0.5)) extra['hw:vif_multiqueue_enabled'] = pick(BOOL_STRINGS);
    if (chance(0.2)) extra['hw:cpu_policy'] = 'dedicated';
    const image: Record<string, unknown> = {};
    const model = chance(0.4) ? pick(IMAGE_MODELS) : undefined;
    if (model !== undefined) image.hw_vif_model = model;
    if (chance(0.3)) image.hw_vif_multiqueue_enabled = chance(0.5) ? chance(0.5) : pick(BOOL_STRINGS);
    if (chance(0.2)) image.hw_disk_bus = 'virtio';
    const conf: Record<string, unknown> = {};
    if (chance(0.3)) conf.max_queues = pick([1, 4, 8, 64, 300]);
    if (chance(0.4)) conf.rx_queue_size = pick([256, 512, 1024]);
    if (chance(0.3)) conf.tx_queue_size = pick([256, 512, 1024]);
    if (chance(0.1)) conf.use_virtio_for_bridges = false;
    cases.push({
      vif: vifDict(i, { vlan: chance(0.5) ? 1 + Math.floor(rand() * 4094) : undefined, mode: pick(MODES), vnicType: chance(0.2) ? 'macvtap' : 'normal' }),
      vcpus: chance(0.3) ? pick(VCPUS) : 1 + Math.floor(rand() * 512),
      extra_specs: extra,
      image_properties: image,
      conf,
      virt_type: chance(0.7) ? 'kvm' : pick(['qemu', 'parallels', 'lxc']),
    });
  }
  return cases;
}

/** An element tree as a set: one string per element, its path and its sorted attributes. */
function elementSet(xml: string): string[] {
  const out: string[] = [];
  const walk = (e: XmlElement, path: string): void => {
    const here = `${path}/${e.name}`;
    out.push(`${here}[${Object.entries(e.attrs).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(',')}]`);
    for (const c of e.children) if ('name' in c) walk(c, here);
  };
  walk(readXml(xml), '');
  return out.sort();
}

/** Where Nova's output is refused by libvirt's schema or the kernel: the corrections novaInterfaceXml documents. */
interface Correction { passthru: boolean; zero: boolean; queues: boolean }

/** Nova's element set with the documented corrections applied, and which corrections applied. */
function correctedNovaSet(xml: string): { set: string[]; fix: Correction } {
  const root = readXml(xml);
  const fix: Correction = { passthru: false, zero: false, queues: false };
  const walk = (e: XmlElement): void => {
    if (e.name === 'source' && e.attrs.mode === 'passthru') { e.attrs.mode = 'passthrough'; fix.passthru = true; }
    if (e.name === 'driver' && e.attrs.queues !== undefined && Number(e.attrs.queues) > MAX_TAP_QUEUES) { e.attrs.queues = String(MAX_TAP_QUEUES); fix.queues = true; }
    if (e.name === 'bandwidth') {
      e.children = e.children.filter((c) => !('name' in c) || c.attrs.average !== '0' || ((fix.zero = true), false));
      for (const c of e.children) if ('name' in c) for (const a of ['peak', 'burst']) if (c.attrs[a] === '0') { delete c.attrs[a]; fix.zero = true; }
    }
    for (const c of e.children) if ('name' in c) walk(c);
  };
  walk(root);
  root.children = root.children.filter((c) => !('name' in c) || c.name !== 'bandwidth' || c.children.some((x) => 'name' in x));
  const out: string[] = [];
  const flat = (e: XmlElement, path: string): void => {
    const here = `${path}/${e.name}`;
    out.push(`${here}[${Object.entries(e.attrs).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(',')}]`);
    for (const c of e.children) if ('name' in c) flat(c, here);
  };
  flat(root, '');
  return { set: out.sort(), fix };
}

/** A domain around interfaces given as XML text (Nova's may be invalid, so no parser of ours sits in between). */
const domainOf = (interfaces: string[]): string =>
  `<domain type="kvm"><name>mvt-nova</name><memory unit="MiB">64</memory><vcpu>1</vcpu><os><type arch="x86_64">hvm</type></os><devices>${interfaces.join('')}</devices></domain>`;

type Ours = { xml: string; warnings: string[] } | { error: VifError };

function ours(c: NovaConfigCase): Ours {
  const warnings: string[] = [];
  const spy = vi.spyOn(process, 'emitWarning').mockImplementation(((w: string) => void warnings.push(String(w))) as never);
  try {
    const xml = novaInterfaceXml(c.vif as never, { vcpus: c.vcpus, flavorExtraSpecs: c.extra_specs, imageProperties: c.image_properties, conf: c.conf as never, virtType: c.virt_type as never });
    return { xml, warnings };
  } catch (e) {
    if (!(e instanceof VifError)) throw e;
    return { error: e };
  } finally {
    spy.mockRestore();
  }
}

const cases = corpus();
/** Kernel releases for Nova's queue cap (it reads the major version from os.uname()). */
const RELEASES = ['2.6.32-754.el6.x86_64', '3.10.0-1160.el7.x86_64', '4.19.0-27-amd64', '5.10.0-30-amd64', '6.1.0-57-amd64', '6.18.44-fc-v1045'];
const bindCases: NeutronBindCase[] = [
  { mappings: { physnet1: 'eth0' }, segment: { id: 's1', network_type: 'flat', physical_network: 'physnet1', segmentation_id: null }, address: 'fa:16:3e:aa:00:01' },
  { mappings: { physnet1: 'eth0' }, segment: { id: 's2', network_type: 'vlan', physical_network: 'physnet1', segmentation_id: 100 }, address: 'fa:16:3e:aa:00:02' },
  // vnic_type macvtap: Neutron's macvtap driver binds only normal ports (macvtap vnics are the SR-IOV agent's), even
  // though Nova renders vif type macvtap with either vnic type alike (the corpus above has both).
  { mappings: { physnet1: 'eth0' }, segment: { id: 's3', network_type: 'vlan', physical_network: 'physnet1', segmentation_id: 4094 }, address: 'fa:16:3e:aa:00:03', vnic_type: 'macvtap' },
  { mappings: { physnet1: 'eth0' }, segment: { id: 's3', network_type: 'vlan', physical_network: 'physnet1', segmentation_id: 4094 }, address: 'fa:16:3e:aa:00:03' },
  // Names too long for "<name>.<vlan>" in 15 bytes: Neutron hashes the interface part (plugin_utils.get_interface_name).
  { mappings: { physnet1: 'enp129s0f1np1' }, segment: { id: 's4', network_type: 'vlan', physical_network: 'physnet1', segmentation_id: 1 }, address: 'fa:16:3e:aa:00:04' },
  { mappings: { physnet1: 'longphysname015' }, segment: { id: 's5', network_type: 'vlan', physical_network: 'physnet1', segmentation_id: 4094 }, address: 'fa:16:3e:aa:00:05' },
  // A network type the macvtap driver does not bind.
  { mappings: { physnet1: 'eth0' }, segment: { id: 's6', network_type: 'vxlan', physical_network: 'physnet1', segmentation_id: 5000 }, address: 'fa:16:3e:aa:00:06' },
];

/** Inputs where ours is deliberately stricter than Nova: Nova renders something, ours refuses naming the key. */
const stricter: Array<[string, NovaConfigCase, string]> = [
  ["a multiqueue value that is not a boolean (Nova's bool_from_string reads it as false)", { vif: vifDict(9001, { vlan: 100 }), vcpus: 4, extra_specs: { 'hw:vif_multiqueue_enabled': 'maybe' }, image_properties: {}, conf: {}, virt_type: 'kvm' }, 'flavorExtraSpecs.hw:vif_multiqueue_enabled'],
  ['a quota that is not an integer (Nova writes it into the XML as given)', { vif: vifDict(9002, { vlan: 100 }), vcpus: 1, extra_specs: { 'quota:vif_inbound_average': '10k' }, image_properties: {}, conf: {}, virt_type: 'kvm' }, 'flavorExtraSpecs.quota:vif_inbound_average'],
];

describeNova("novaInterfaceXml against Nova's own get_config (python3-nova, one process)", () => {
  let oracle: OracleResponse;
  const t0 = Date.now();
  beforeAll(() => {
    oracle = runOracle({ config: [...cases, ...stricter.map(([, c]) => c)], bind: bindCases, caps: RELEASES });
    process.stderr.write(`nova oracle: Nova ${oracle.versions.nova}, Neutron ${oracle.versions.neutron}, kernel ${oracle.kernel}: ${cases.length} cases in ${Date.now() - t0} ms\n`);
  }, 300_000);

  const results: Array<{ c: NovaConfigCase; nova: { xml: string } | NovaError; ours: Ours; fix?: Correction }> = [];

  test(`the corpus has ≥ 300 cases (${cases.length}) and reaches every outcome`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(300);
    expect(oracle.config).toHaveLength(cases.length + stricter.length);
    const kinds = new Set(oracle.config.slice(0, cases.length).map((r) => ('xml' in r ? 'xml' : r.error)));
    expect([...kinds].sort()).toStrictEqual(['FlavorImageConflict', 'UnsupportedHardware', 'VifDetailsMissingMacvtapParameters', 'xml']);
  });

  test('case by case: the same error class and fields, or the same elements and attributes', () => {
    const mismatches: string[] = [];
    cases.forEach((c, i) => {
      const nova = oracle.config[i]!;
      const mine = ours(c);
      const label = `case ${i} ${JSON.stringify(c)}`;
      if ('error' in nova) {
        if (!('error' in mine)) return void mismatches.push(`${label}: Nova raised ${nova.error}, ours rendered ${mine.xml}`);
        if (mine.error.constructor.name !== nova.error) return void mismatches.push(`${label}: Nova raised ${nova.error}, ours ${mine.error.constructor.name}: ${mine.error.message}`);
        const e = mine.error as VifError & Record<string, unknown>;
        if (nova.error === 'UnsupportedHardware' && (e.model !== nova.kwargs.model || e.virt !== nova.kwargs.virt)) mismatches.push(`${label}: fields ${String(e.model)}/${String(e.virt)} vs ${JSON.stringify(nova.kwargs)}`);
        if (nova.error === 'VifDetailsMissingMacvtapParameters' && (JSON.stringify(e.missingParams) !== JSON.stringify(nova.kwargs.missing_params) || e.vifId !== nova.kwargs.vif_id)) {
          mismatches.push(`${label}: fields ${JSON.stringify(e.missingParams)} vs ${JSON.stringify(nova.kwargs)}`);
        }
        if (nova.error === 'FlavorImageConflict') {
          // Nova formats the values into its message: "... explicitly set to True, ... explicitly set to False."
          const m = /explicitly set to (\w+), .* explicitly set to (\w+)\.$/.exec(nova.message);
          if (!m || String(e.flavorVal) !== m[1]!.toLowerCase() || String(e.imageVal) !== m[2]!.toLowerCase()) mismatches.push(`${label}: ${String(e.flavorVal)}/${String(e.imageVal)} vs ${nova.message}`);
        }
        results.push({ c, nova, ours: mine });
        return;
      }
      if ('error' in mine) return void mismatches.push(`${label}: Nova rendered ${nova.xml}, ours raised ${mine.error.message}`);
      const { set, fix } = correctedNovaSet(nova.xml);
      const got = elementSet(mine.xml);
      if (JSON.stringify(got) !== JSON.stringify(set)) mismatches.push(`${label}:\n  nova ${nova.xml}\n  ours ${got.join(' ')}\n  want ${set.join(' ')}`);
      results.push({ c, nova, ours: mine, fix });
    });
    expect(mismatches.slice(0, 5)).toStrictEqual([]);
  });

  test('a dropped bandwidth intention warns exactly when Nova dropped one too (or wrote a zero)', () => {
    const wrong: string[] = [];
    for (const r of results) {
      if (!('xml' in r.nova) || !('xml' in r.ours)) continue;
      const novaSet = elementSet(r.nova.xml).join(' ');
      let dropped = false;
      for (const dir of ['inbound', 'outbound']) {
        const keys = ['peak', 'burst'].filter((a) => r.c.extra_specs[`quota:vif_${dir}_${a}`] !== undefined);
        const avg = r.c.extra_specs[`quota:vif_${dir}_average`];
        if (keys.length && (avg === undefined || avg === '0')) dropped = true;
        if (avg !== undefined && avg !== '0' && keys.some((a) => r.c.extra_specs[`quota:vif_${dir}_${a}`] === '0')) dropped = true;
      }
      if ((r.ours.warnings.length > 0) !== dropped) wrong.push(`${JSON.stringify(r.c.extra_specs)} nova=${novaSet} warnings=${r.ours.warnings.join('|')}`);
    }
    expect(wrong).toStrictEqual([]);
    expect(results.some((r) => 'xml' in r.ours && r.ours.warnings.length > 0)).toBe(true);
  });

  test('where ours is stricter than Nova, Nova renders and ours refuses naming the key', () => {
    stricter.forEach(([, c, path], i) => {
      const nova = oracle.config[cases.length + i]!;
      expect(nova).toHaveProperty('xml');
      const mine = ours(c);
      expect('error' in mine && mine.error.issues.map((x) => x.path)).toStrictEqual([path]);
    });
    // Nova really wrote the non-integer quota into the XML (which libvirt's schema then refuses).
    expect((oracle.config[cases.length + 1] as { xml: string }).xml).toContain('average="10k"');
  });

  test("the queue cap by kernel version is Nova's _get_max_tap_queues, with 256 where Nova has none", () => {
    expect(RELEASES.map((r) => novaKernelQueueCap(r) ?? null)).toStrictEqual(oracle.caps);
    expect(oracle.caps).toStrictEqual([1, 8, 256, null, null, null]);
  });

  test('queues above 256 (Nova on kernels ≥ 5 asks for one per vCPU) become 256, the kernel limit', () => {
    const capped = results.filter((r) => r.fix?.queues);
    expect(capped.length).toBeGreaterThan(0);
    for (const r of capped) {
      expect(Number(/queues="(\d+)"/.exec((r.nova as { xml: string }).xml)![1])).toBeGreaterThan(MAX_TAP_QUEUES);
      expect((r.ours as { xml: string }).xml).toContain(`queues="${MAX_TAP_QUEUES}"`);
    }
  });

  (libvirtValidateUnavailable ? test.skip : test)(`virt-xml-validate: all of ours, and Nova's except where Nova's is the invalid one${libvirtValidateUnavailable ? ` [SKIPPED: ${libvirtValidateUnavailable}]` : ''}`, async () => {
    const rendered = results.filter((r) => 'xml' in r.nova && 'xml' in r.ours);
    const oursXml = rendered.map((r) => (r.ours as { xml: string }).xml);
    const novaValid = rendered.filter((r) => !r.fix!.passthru && !r.fix!.zero).map((r) => (r.nova as { xml: string }).xml);
    const novaInvalid = rendered.filter((r) => r.fix!.passthru || r.fix!.zero).map((r) => (r.nova as { xml: string }).xml);
    expect(novaInvalid.length).toBeGreaterThan(0);
    // Two batched documents with every interface in each, then one document per interface Nova got wrong.
    const [a, b, ...bad] = await validateDomains([domainOf(oursXml), domainOf(novaValid), ...novaInvalid.map((x) => domainOf([x]))]);
    expect(a!.output).toMatch(/validates$/);
    expect(b!.output).toMatch(/validates$/);
    expect(bad.filter((r) => r.ok).map((r) => r.xml)).toStrictEqual([]);
    process.stderr.write(`virt-xml-validate: ${oursXml.length} of ours and ${novaValid.length} of Nova's valid in 2 documents; ${novaInvalid.length} of Nova's refused (passthru or a zero)\n`);
  }, 120_000);

  test("Neutron's bind_port output (flat, VLAN, hashed names) goes through parseVif, toInterfaceXml and novaInterfaceXml", () => {
    expect(oracle.bind.map((b) => b.bound)).toStrictEqual([true, true, false, true, true, true, false]);
    // test/vif-nova-plug.test.ts plugs (ours and Nova's, in the VM) exactly these two hashed names.
    const sources = oracle.bind.map((b) => (b.bound ? b.vif_details.macvtap_source : null));
    expect([sources[4], sources[5]]).toStrictEqual(['enp19cb088.1', 'long4e6e5d.4094']);
    for (const [i, b] of oracle.bind.entries()) {
      if (!b.bound) continue;
      const c = bindCases[i]!;
      const vif = { id: 'port-1', address: c.address, type: b.vif_type, vnic_type: c.vnic_type ?? 'normal', network: { id: 'net-1', bridge: null, label: 'n', meta: {}, subnets: [] }, details: b.vif_details };
      const parsed = parseVif(vif);
      const phys = c.mappings.physnet1!;
      expect(parsed.details.physical_interface).toBe(phys);
      expect(parsed.details.vlan).toBe(c.segment.segmentation_id ?? undefined);
      expect(Buffer.byteLength(parsed.details.macvtap_source)).toBeLessThanOrEqual(15);
      if (c.segment.network_type === 'flat') expect(parsed.details.macvtap_source).toBe(phys);
      else if (phys.length + 1 + String(c.segment.segmentation_id).length <= 15 && phys.length <= 10) expect(parsed.details.macvtap_source).toBe(`${phys}.${c.segment.segmentation_id}`);
      else expect(parsed.details.macvtap_source).toMatch(new RegExp(`^${phys.slice(0, 4)}[0-9a-f]{6}\\.${c.segment.segmentation_id}$`));
      expect(elementSet(novaInterfaceXml(vif as never, { vcpus: 1 }))).toStrictEqual(elementSet(b.xml));
      // The general renderer names the same source device and mode.
      expect(elementSet(toInterfaceXml(vif as never))).toStrictEqual(elementSet(b.xml));
    }
  });
});

describe('novaInterfaceXml refusals that need no oracle', () => {
  const vif = vifDict(9100, { vlan: 100 });
  test('an image with os_distro but no hw_vif_model (Nova would ask libosinfo for the model)', () => {
    expect(() => novaInterfaceXml(vif as never, { vcpus: 1, imageProperties: { os_distro: 'ubuntu' } })).toThrow(/imageProperties\.os_distro: without hw_vif_model/);
    expect(novaInterfaceXml(vif as never, { vcpus: 1, imageProperties: { os_distro: 'ubuntu', hw_vif_model: 'virtio' } })).toContain('<model type="virtio"/>');
  });
  test('a virt type Nova (Zed) does not have is UnsupportedVirtType with its field', () => {
    let err: unknown;
    try { novaInterfaceXml(vif as never, { vcpus: 1, virtType: 'xen' as never }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(UnsupportedVirtType);
    expect((err as UnsupportedVirtType).virt).toBe('xen');
    expect((err as UnsupportedVirtType).code).toBe('ERR_VIF_UNSUPPORTED_VIRT_TYPE');
  });
  test('vcpus is required (a flavor always has it) and conf values are Nova\'s choices', () => {
    expect(() => novaInterfaceXml(vif as never, {} as never)).toThrow(/vcpus: must be a number/);
    expect(() => novaInterfaceXml(vif as never, { vcpus: 2, conf: { rx_queue_size: 300 as never } })).toThrow(/conf\.rx_queue_size: must be one of 256, 512, 1024/);
  });
});

afterAll(() => vi.restoreAllMocks());
