/**
 * Property test over many generated vifs and options (seeded PRNG, reproducible: set MVT_VIF_SEED to explore).
 *
 * Property: for every generated input, either our code throws one of OUR errors (a `VifError`) before producing any
 * XML, or the XML it produces is accepted by libvirt's own schema (`virt-xml-validate`) and parses back to the same
 * config. An oracle built from the generator's labels says which inputs must be refused, so "valid" inputs are not
 * allowed to be refused either.
 */
import { expect, test } from 'vitest';
import {
  VifError,
  interfaceFromVif,
  parseInterfaceXml,
  toDomainXml,
  toInterfaceXml,
  type InterfaceConfig,
  type InterfaceOptions,
  type VifInput,
} from '../lib/vif/index.js';
import { prng } from './helpers/prng.js';
import { describeLibvirt, validateDomains } from './helpers/libvirt.js';

/** A candidate value and whether it is valid on its own. `undefined` as value means "leave the key out". */
type Atom<T> = { v: T; ok: boolean };
const ok = <T>(v: T): Atom<T> => ({ v, ok: true });
const bad = <T>(v: T): Atom<T> => ({ v, ok: false });

const hostile = ['a"b', "a'b", 'a<b', 'a&b', 'a\nb', 'a b', 'a/b', '', 'x'.repeat(16), '.', 'eth0:1', 'ü'];

const pools = {
  mac: [ok('fa:16:3e:00:00:01'), ok('FA:16:3E:AB:CD:EF'), ok('02:00:00:00:00:00'), bad('01:00:5e:00:00:01'), bad('00:00:00:00:00:00'), bad('fa:16:3e:00:00'), bad('zz:16:3e:00:00:01'), bad(42)],
  dev: [ok('eth0'), ok('eth0.100'), ok('bond0.4094'), ok('enp1s0f1'), ok('a'.repeat(15)), ok('x-y_z.1'), ...hostile.map((h) => bad(h))],
  mode: [ok('bridge'), ok('vepa'), ok('private'), ok('passthrough'), ok('passthru'), bad('bridged'), bad('PASSTHROUGH'), bad(''), bad(4)],
  vlan: [ok(undefined), ok(null), ok(1), ok(4094), ok('100'), bad(0), bad(4095), bad(-1), bad('1e2'), bad(1.5), bad('ten')],
  mtu: [ok(undefined), ok(null), ok(68), ok(1500), ok(9000), ok(65535), bad(67), bad(65536), bad('1500')],
  aliases: [ok(false), ok(true)],
  profileid: [ok(undefined), ok('finance'), ok(`"'<>&`), ok('a&amp;b'), ok('&x;'), ok('p'.repeat(39)), bad('p'.repeat(40)), bad('a\nb'), bad('a\tb'), bad('')],
  form: [ok('direct'), ok('ethernet')],
  targetDev: [ok(undefined), ok('mvt0'), ok('tap6c1b3d0e-2f'), ...hostile.slice(0, 6).map((h) => bad(h))],
  vcpus: [ok(undefined), ok(1), ok(2), ok(8), ok(300), bad(0), bad(-2), bad(2.5)],
  linkState: [ok(undefined), ok('up'), ok('down'), bad('sideways')],
  bootOrder: [ok(undefined), ok(1), ok(7), bad(0)],
  alias: [ok(undefined), ok('ua-net0'), ok('ua-a.b_c-d'), bad('net0'), bad('ua-a"b'), bad('ua-a<b'), bad('ua-a&b'), bad('ua-a\nb')],
  quota: [
    ok(undefined),
    ok({ 'quota:vif_inbound_average': '100' }),
    ok({ 'quota:vif_outbound_average': 5, 'quota:vif_outbound_peak': '9', 'quota:vif_outbound_burst': '3' }),
    ok({ 'quota:cpu_shares': '2' }),
    bad({ 'quota:vif_inbound_average': '0' }),
    bad({ 'quota:vif_inbound_peak': '10' }), // peak without average
    bad({ 'quota:vif_inbound_floor': '10', 'quota:vif_inbound_average': '10' }), // floor: type network only
    bad({ 'quota:vif_outbound_average': 'fast' }),
  ],
  trust: [ok(undefined), ok(true), ok(false)],
  hostCsum: [ok(undefined), ok(true), ok(false)],
  optMtu: [ok(undefined), ok(1400), ok(null)],
};

interface Case {
  vif: VifInput;
  options: InterfaceOptions;
  /** What the oracle expects: true = must produce XML, false = must throw our error. */
  valid: boolean;
  describe: string;
}

function generate(rand: () => number): Case {
  const pick = <T>(pool: Atom<T>[]): Atom<T> => pool[Math.floor(rand() * pool.length)]!;
  // Start from valid atoms everywhere, then (half the time) replace one to three of them by any atom of their pool,
  // so both the valid space and each single kind of mistake are explored.
  const chosen: Record<string, Atom<unknown>> = {};
  for (const [k, pool] of Object.entries(pools)) chosen[k] = pick((pool as Atom<unknown>[]).filter((a) => a.ok));
  if (rand() < 0.5) {
    const keys = Object.keys(pools);
    const n = 1 + Math.floor(rand() * 3);
    for (let i = 0; i < n; i++) {
      const k = keys[Math.floor(rand() * keys.length)]!;
      chosen[k] = pick(pools[k as keyof typeof pools] as Atom<unknown>[]);
    }
  }
  const v = (k: string): unknown => chosen[k]!.v;
  const useAliases = v('aliases') === true;
  const details: Record<string, unknown> = {
    [useAliases ? 'macvtap_src' : 'macvtap_source']: v('dev'),
    [useAliases ? 'mode' : 'macvtap_mode']: v('mode'),
    physical_interface: 'eth0',
  };
  if (v('vlan') !== undefined) details.vlan = v('vlan');
  const vif = {
    id: 'port-1',
    address: v('mac'),
    type: 'macvtap',
    network: { meta: v('mtu') === undefined ? {} : { mtu: v('mtu') } },
    details,
    ...(v('profileid') === undefined ? {} : { qbh_params: { profileid: v('profileid') } }),
  } as VifInput;

  const form = v('form') as 'direct' | 'ethernet';
  const options: InterfaceOptions = { form };
  const set = <K extends keyof InterfaceOptions>(key: K, atom: string): void => {
    if (v(atom) !== undefined) options[key] = v(atom) as InterfaceOptions[K];
  };
  set('targetDev', 'targetDev');
  set('vcpus', 'vcpus');
  set('linkState', 'linkState');
  set('bootOrder', 'bootOrder');
  set('alias', 'alias');
  set('quota', 'quota');
  set('trustGuestRxFilters', 'trust');
  set('mtu', 'optMtu');
  if (v('hostCsum') !== undefined) options.hostOffloads = { csum: v('hostCsum') as boolean };

  // The oracle: invalid atoms, plus libvirt's cross-field rules.
  const reasons = Object.entries(chosen).filter(([, a]) => !a.ok).map(([k]) => k);
  if (form === 'ethernet' && options.targetDev === undefined) reasons.push('ethernet without targetDev');
  if (form === 'ethernet' && options.trustGuestRxFilters !== undefined) reasons.push('trustGuestRxFilters on ethernet');
  if (form === 'direct' && typeof options.mtu === 'number') reasons.push('mtu on direct');
  return {
    vif,
    options,
    valid: reasons.length === 0,
    describe: `${reasons.length ? `invalid (${reasons.join(', ')})` : 'valid'}: ${JSON.stringify({ vif, options })}`,
  };
}

const SEED = Number(process.env.MVT_VIF_SEED ?? 20260124);
const COUNT = 600;

describeLibvirt(`generated vifs (seed ${SEED}, ${COUNT} cases)`, () => {
  test('each input is either refused with our error before any XML, or gives XML libvirt accepts and that round-trips', async () => {
    const rand = prng(SEED);
    const produced: Array<{ xml: string; config: InterfaceConfig; c: Case }> = [];
    let refused = 0;
    for (let i = 0; i < COUNT; i++) {
      const c = generate(rand);
      let xml: string | undefined;
      let error: unknown;
      try {
        xml = toInterfaceXml(c.vif, c.options);
      } catch (e) {
        error = e;
      }
      if (c.valid) {
        expect(error, c.describe).toBeUndefined();
        const config = interfaceFromVif(c.vif, c.options);
        expect(parseInterfaceXml(xml!), c.describe).toStrictEqual(config);
        produced.push({ xml: xml!, config, c });
      } else {
        expect(xml, c.describe).toBeUndefined();
        expect(error, c.describe).toBeInstanceOf(VifError);
        refused++;
      }
    }
    // The generator must exercise both sides substantially, or the property says little.
    expect(produced.length).toBeGreaterThan(COUNT / 5);
    expect(refused).toBeGreaterThan(COUNT / 5);

    // libvirt's verdict, 20 interfaces per domain (a domain may hold any number); a failing batch is re-checked one
    // interface at a time to name the culprit.
    const batches: Array<typeof produced> = [];
    for (let i = 0; i < produced.length; i += 20) batches.push(produced.slice(i, i + 20));
    const results = await validateDomains(batches.map((b) => toDomainXml(b.map((p) => p.xml))));
    const culprits: string[] = [];
    for (const [i, r] of results.entries()) {
      if (r.ok) continue;
      const singles = await validateDomains(batches[i]!.map((p) => toDomainXml([p.xml])));
      singles.forEach((s, j) => {
        if (!s.ok) culprits.push(`${batches[i]![j]!.c.describe}\n${s.output}\n${batches[i]![j]!.xml}`);
      });
      if (culprits.length === 0) culprits.push(`batch ${i} failed as a whole: ${r.output}`);
    }
    expect(culprits).toEqual([]);
  });
});
