/**
 * Port-security input, without the kernel: every malformed policy or rule is refused with Node's error codes before
 * anything is sent (applyPortSecurity validates before it resolves the link, so these need no root), the address
 * helpers agree with Node's own parser, and the disjoint-box rewrite of overlapping rules covers exactly the points
 * of the rules (checked against a brute-force membership oracle on random rule lists).
 */
import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { applyPortSecurity, type PortSecurityPolicy, type SecurityGroupRule } from '../lib/index.js';
import { familyOf, formatAddress, formatRange, linkLocalOf, macNumber, parseAddress, parsePrefix, V4, V6 } from '../lib/portsec/addr.js';
import { disjointBoxes, splitPacked, type Box } from '../lib/portsec/boxes.js';
import { compilePolicy } from '../lib/portsec/policy.js';
import { applyCommands } from '../lib/portsec/ruleset.js';
import { prng } from './helpers/prng.js';

const OK: PortSecurityPolicy = { mac: 'fa:16:3e:00:00:01', ips: ['10.0.0.5'] };

function refusal(policy: unknown): { name: string; code: string; message: string } {
  try {
    compilePolicy(policy as PortSecurityPolicy);
  } catch (e) {
    return { name: (e as Error).name, code: (e as { code: string }).code, message: (e as Error).message };
  }
  throw new Error(`accepted: ${JSON.stringify(policy)}`);
}

describe('port-security policy validation', () => {
  const rule = (over: Record<string, unknown>): PortSecurityPolicy => ({ ...OK, rules: [{ direction: 'ingress', ethertype: 'IPv4', ...over } as never] });
  const rows: [string, unknown, string, RegExp][] = [
    ['policy not an object', 'x', 'ERR_INVALID_ARG_TYPE', /policy/],
    ['unknown policy key', { ...OK, allowedPairs: [] }, 'ERR_INVALID_ARG_VALUE', /policy\.allowedPairs.*not a known option/],
    ['multicast MAC', { ...OK, mac: '01:00:5e:00:00:01' }, 'ERR_INVALID_ARG_VALUE', /unicast/],
    ['malformed MAC', { ...OK, mac: 'fa:16:3e:00:00' }, 'ERR_INVALID_ARG_VALUE', /policy\.mac/],
    ['ips not an array', { ...OK, ips: '10.0.0.5' }, 'ERR_INVALID_ARG_TYPE', /policy\.ips/],
    ['malformed address', { ...OK, ips: ['10.0.0.256'] }, 'ERR_INVALID_ARG_VALUE', /policy\.ips\[0\]/],
    ['host bits under the prefix', { ...OK, ips: ['10.0.0.5/24'] }, 'ERR_INVALID_ARG_VALUE', /host bits/],
    ['prefix length too long', { ...OK, ips: ['2001:db8::/129'] }, 'ERR_INVALID_ARG_VALUE', /prefix length/],
    ['pair without ip', { ...OK, allowedAddressPairs: [{ mac: 'fa:16:3e:00:00:02' }] }, 'ERR_INVALID_ARG_TYPE', /allowedAddressPairs\[0\]\.ip/],
    ['pair with an unknown key', { ...OK, allowedAddressPairs: [{ ip: '10.0.0.6', vlan: 3 }] }, 'ERR_INVALID_ARG_VALUE', /allowedAddressPairs\[0\]\.vlan/],
    ['stateful group', { ...OK, stateful: true }, 'ERR_INVALID_ARG_VALUE', /stateless.*no connection tracking/],
    ['stateful rule', rule({ stateful: true }), 'ERR_INVALID_ARG_VALUE', /rules\[0\]\.stateful.*stateless/],
    ['bad direction', rule({ direction: 'in' }), 'ERR_INVALID_ARG_VALUE', /direction/],
    ['bad ethertype', rule({ ethertype: 'ipv4' }), 'ERR_INVALID_ARG_VALUE', /ethertype/],
    ['unknown protocol', rule({ protocol: 'quic' }), 'ERR_INVALID_ARG_VALUE', /protocol/],
    ['protocol number above 255', rule({ protocol: 256 }), 'ERR_OUT_OF_RANGE', /protocol/],
    ['protocol number string above 255', rule({ protocol: '300' }), 'ERR_OUT_OF_RANGE', /protocol/],
    ['ICMPv6 in an IPv4 rule', rule({ protocol: 'ipv6-icmp' }), 'ERR_INVALID_ARG_VALUE', /ICMPv6/],
    ['port above 65535', rule({ protocol: 'tcp', port_range_min: 1, port_range_max: 65536 }), 'ERR_OUT_OF_RANGE', /port_range_max/],
    ['negative port', rule({ protocol: 'udp', port_range_min: -1, port_range_max: 5 }), 'ERR_OUT_OF_RANGE', /port_range_min/],
    ['min above max', rule({ protocol: 'tcp', port_range_min: 30, port_range_max: 20 }), 'ERR_OUT_OF_RANGE', /port_range_max/],
    ['only one end of a port range', rule({ protocol: 'tcp', port_range_min: 30 }), 'ERR_INVALID_ARG_VALUE', /other end/],
    ['ports for a protocol without ports', rule({ protocol: 'gre', port_range_min: 1, port_range_max: 2 }), 'ERR_INVALID_ARG_VALUE', /port_range_min/],
    ['ports for any protocol', rule({ port_range_min: 1, port_range_max: 2 }), 'ERR_INVALID_ARG_VALUE', /port_range_min/],
    ['ICMP code without type', rule({ protocol: 'icmp', port_range_max: 0 }), 'ERR_INVALID_ARG_VALUE', /needs a type/],
    ['ICMP type above 255', rule({ protocol: 'icmp', port_range_min: 256 }), 'ERR_OUT_OF_RANGE', /ICMP type/],
    ['remote prefix of the other family', rule({ remote_ip_prefix: '2001:db8::/32' }), 'ERR_INVALID_ARG_VALUE', /ethertype/],
    ['malformed remote prefix', rule({ remote_ip_prefix: '10.0.0/8' }), 'ERR_INVALID_ARG_VALUE', /remote_ip_prefix/],
    ['remote group not expanded', rule({ remote_group_id: 'b7d3…' }), 'ERR_INVALID_ARG_VALUE', /expand the group/],
    ['unknown rule key', rule({ port: 22 }), 'ERR_INVALID_ARG_VALUE', /rules\[0\]\.port/],
    ['rules not an array', { ...OK, rules: {} }, 'ERR_INVALID_ARG_TYPE', /policy\.rules/],
  ];
  it.each(rows)('%s → %s', (_name, policy, code, msg) => {
    const r = refusal(policy);
    expect(r.code).toBe(code);
    expect(r.message).toMatch(msg);
  });

  it('applyPortSecurity refuses bad input before it looks for the link (no root needed, nothing sent)', async () => {
    await expect(applyPortSecurity('no-such-link', { ...OK, mac: 'x' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(applyPortSecurity('no-such-link', OK, { owner: 'a b' } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(applyPortSecurity('no-such-link', OK, { netns: 'x', ttl: 1 } as never)).rejects.toThrow(/options\.ttl/);
  });

  it('accepts a Neutron API rule list as it comes (descriptive fields, digit-string protocols, null ranges)', () => {
    const neutron: SecurityGroupRule[] = [{
      id: '0e2b1c0c-5f32-4b3e-9b51-2e1f1a1f2a11', tenant_id: 'p', project_id: 'p', security_group_id: 's', direction: 'ingress',
      ethertype: 'IPv4', protocol: '6', port_range_min: 22, port_range_max: 22, remote_ip_prefix: '0.0.0.0/0', remote_group_id: null,
      remote_address_group_id: null, normalized_cidr: '0.0.0.0/0', description: '', tags: [], created_at: 'x', updated_at: 'x',
      revision_number: 0, standard_attr_id: 7, belongs_to_default_sg: true,
    }, { direction: 'egress', ethertype: 'IPv6', protocol: null, port_range_min: null, port_range_max: null, remote_ip_prefix: null }];
    const c = compilePolicy({ ...OK, rules: neutron });
    expect(c.rules?.ingress4.ports).toEqual([{ a: [0n, 0xffff_ffffn], b: [(6n << 16n) | 22n, (6n << 16n) | 22n] }]);
    expect(c.rules?.egress6.protos).toEqual([{ a: [0n, (1n << 128n) - 1n], b: [0n, 255n] }]);
  });

  it('allowed MACs get their EUI-64 link-local address; pairs without a MAC use the port\'s', () => {
    const c = compilePolicy({ mac: 'fa:16:3e:12:34:56', ips: ['10.0.0.5'], allowedAddressPairs: [{ ip: '10.0.0.6' }, { ip_address: '192.168.0.0/24', mac_address: 'fa:16:3e:00:00:09' }] });
    expect(formatAddress(linkLocalOf(macNumber('fa:16:3e:12:34:56')), V6)).toBe('fe80::f816:3eff:fe12:3456');
    expect(c.macs).toEqual([macNumber('fa:16:3e:00:00:09'), macNumber('fa:16:3e:12:34:56')]);
    const port = macNumber('fa:16:3e:12:34:56');
    expect(c.pairs4).toContainEqual({ a: [port, port], b: [0x0a00_0005n, 0x0a00_0006n] });
    expect(c.pairs6.map((b) => formatAddress(b.b[0], V6)).sort()).toEqual(['fe80::f816:3eff:fe00:9', 'fe80::f816:3eff:fe12:3456']);
  });

  it('the rendered ruleset names the device only as given and quotes nothing it did not validate', () => {
    const [text = ''] = applyCommands('mvt0', 7, 'macvtap:macvtap:1:2', compilePolicy({ ...OK, rules: [] }), { table: false }, false);
    expect(text).toMatch(/^add table netdev mvtps-mvt0 \{ comment "macvtap-ps ifindex=7 owner=macvtap:macvtap:1:2"; \}$/m);
    expect(text).toMatch(/hook egress device "mvt0"/);
    expect(text).not.toMatch(/delete table/);
    expect(text).toMatch(/@macs-a /);
    const stale = applyCommands('mvt0', 7, 'macvtap:macvtap:1:2', compilePolicy(OK), { table: true, gen: 'a' }, true);
    expect(stale).toHaveLength(1);
    expect(stale[0]).toMatch(/^delete table netdev mvtps-mvt0$/m);
    // A live ruleset is replaced in two transactions: the other generation's sets first, then the rules and the old sets.
    const [fill, swap] = applyCommands('mvt0', 7, 'macvtap:macvtap:1:2', compilePolicy(OK), { table: true, gen: 'a' }, false);
    expect(fill).toMatch(/^add element netdev mvtps-mvt0 macs-b /m);
    expect(fill).not.toMatch(/rule|chain|-a /);
    expect(swap).toMatch(/^flush chain netdev mvtps-mvt0 from-guest$/m);
    expect(swap).toMatch(/@macs-b /);
    expect(swap).toMatch(/^delete set netdev mvtps-mvt0 macs-a$/m);
  });
});

describe('addresses', () => {
  const rnd = prng(14);
  it('parse like node:net, format back to the same number (RFC 5952 for IPv6)', () => {
    const samples = ['0.0.0.0', '255.255.255.255', '10.0.0.1', '::', '::1', '1::', 'fe80::1:2', '2001:db8::ffff:10.0.0.1',
      '2001:0db8:0000:0000:0000:0000:0000:0001', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '01.2.3.4', '1.2.3', ':::', '1::2::3',
      '1:2:3:4:5:6:7:8:9', 'g::1', '1.2.3.4.5', '12345::1', '::ffff:1.2.3.256'];
    for (let i = 0; i < 200; i++) {
      const n = BigInt.asUintN(128, BigInt(Math.floor(rnd() * 2 ** 52)) << BigInt(Math.floor(rnd() * 76)));
      samples.push(formatAddress(n, V6));
    }
    for (const s of samples) {
      const fam = familyOf(s);
      const node = isIP(s);
      // Node accepts what we accept and vice versa, except leading zeros in IPv4 (both refuse: octal ambiguity).
      expect([s, fam === null ? 0 : fam.v6 ? 6 : 4]).toEqual([s, node]);
      if (fam === null) continue;
      const n = parseAddress(s, fam) as bigint;
      expect(parseAddress(formatAddress(n, fam), fam)).toBe(n);
    }
    expect(formatAddress(parseAddress('2001:db8:0:0:1:0:0:1', V6) as bigint, V6)).toBe('2001:db8::1:0:0:1');
    expect(formatAddress(parseAddress('2001:db8:0:1:1:1:1:1', V6) as bigint, V6)).toBe('2001:db8:0:1:1:1:1:1');
  });

  it('ranges print as the shortest exact form', () => {
    expect(formatRange([0x0a00_0000n, 0x0aff_ffffn], V4)).toBe('10.0.0.0/8');
    expect(formatRange([0x0a00_0001n, 0x0a00_0001n], V4)).toBe('10.0.0.1');
    expect(formatRange([0x0a00_0001n, 0x0a00_0002n], V4)).toBe('10.0.0.1-10.0.0.2');
    expect(parsePrefix('0.0.0.0/0', V4)).toEqual({ range: [0n, 0xffff_ffffn] });
  });
});

describe('disjoint boxes', () => {
  const rnd = prng(1414);
  const int = (n: number): bigint => BigInt(Math.floor(rnd() * n));
  const inside = (b: Box, x: bigint, y: bigint): boolean => b.a[0] <= x && x <= b.a[1] && b.b[0] <= y && y <= b.b[1];

  it('cover exactly the points of the overlapping input and never overlap each other (random rule lists)', () => {
    for (let round = 0; round < 300; round++) {
      const boxes: Box[] = [];
      const n = 1 + Math.floor(rnd() * 12);
      for (let i = 0; i < n; i++) {
        const a0 = int(40); const b0 = int(40);
        boxes.push({ a: [a0, a0 + int(20)], b: [b0, b0 + int(20)] });
      }
      const out = disjointBoxes(boxes);
      for (let x = 0n; x < 62n; x++) {
        for (let y = 0n; y < 62n; y++) {
          const want = boxes.some((b) => inside(b, x, y));
          const hits = out.filter((b) => inside(b, x, y)).length;
          if (hits !== (want ? 1 : 0)) throw new Error(`round ${round}: (${x},${y}) in ${hits} output boxes, input says ${want}: ${JSON.stringify(boxes, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}`);
        }
      }
    }
  });

  it('packed keys split into boxes of the two fields covering the same keys', () => {
    for (let round = 0; round < 500; round++) {
      const lo = int(4096); const hi = lo + int(2048);
      const parts = splitPacked([lo, hi], 8);
      let covered = 0n;
      for (const p of parts) covered += (p.a[1] - p.a[0] + 1n) * (p.b[1] - p.b[0] + 1n);
      expect(covered).toBe(hi - lo + 1n);
      for (const k of [lo, hi, (lo + hi) / 2n]) expect(parts.filter((p) => inside(p, k >> 8n, k & 0xffn)).length).toBe(1);
    }
  });
});

describe('without libnftables', () => {
  it('the addon still loads and works; port security says which package is missing (ENOENT, syscall dlopen)', async () => {
    const { execFileSync } = await import('node:child_process');
    const dist = new URL('../dist/lib/index.js', import.meta.url).href;
    // Reads only (getLink/gc dry run of this namespace's links); the apply is refused at the library load, before any
    // nftables command, so nothing is changed anywhere.
    const script = `
      const m = await import(${JSON.stringify(dist)});
      const lo = await m.getLink('lo');
      const r = await m.applyPortSecurity('lo', { mac: '02:00:00:00:00:01', ips: ['10.0.0.1'] }).then(() => 'applied', (e) => e);
      const g = await m.getPortSecurity('lo').then(() => 'read', (e) => e.code + ' ' + e.syscall);
      const gc = await m.gc({ dryRun: true });
      console.log(JSON.stringify({ lo: lo.name, code: r.code, errno: r.errno, syscall: r.syscall, path: r.path, name: r.name, message: r.message, g, tables: gc.portSecurity }));
    `;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8', env: { ...process.env, MACVTAP_TEST_LIBNFTABLES: '/nonexistent/libnftables.so.1' },
    })) as Record<string, unknown>;
    expect(out).toMatchObject({ lo: 'lo', code: 'ENOENT', errno: -2, syscall: 'dlopen', path: '/nonexistent/libnftables.so.1', name: 'MacvtapError', g: 'ENOENT dlopen', tables: [] });
    expect(out.message).toMatch(/apt install libnftables1/);
  });
});
