/**
 * `macvtap secure` run as a user would (the compiled CLI in a child process), on a macvtap made with `ip` in a
 * throwaway namespace, cross-checked with `nft -j list table` (the nftables CLI, independent of the library).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeNeeding } from './helpers/suite.js';
import { nftTable, nftUnavailable } from './helpers/nft.js';
import { makeTestbed, type Testbed } from '../bench/testbed/netns.js';
import type { PortSecurityState } from '../lib/index.js';

const cli = resolve(import.meta.dirname, '..', 'dist', 'cli', 'macvtap.js');
const work = mkdtempSync(join(tmpdir(), 'mvt-cli-secure-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function macvtap(args: string[], input?: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 30_000, ...(input !== undefined && { input }) });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function file(name: string, content: string): string {
  const p = join(work, name);
  writeFileSync(p, content);
  return p;
}

const MAC = 'fa:16:3e:12:34:56';
const SSH = { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', port_range_min: 22, port_range_max: 22 };
const DNS = { direction: 'egress', ethertype: 'IPv4', protocol: 'udp', port_range_min: 53, port_range_max: 53, remote_ip_prefix: '192.0.2.0/24' };
/** A rule as Neutron's API returns it: descriptive fields the library accepts and ignores. */
const NEUTRON_RULE = { ...SSH, id: '3b2f7a0e-0000-4000-8000-000000000001', security_group_id: '5f0e', project_id: 'p', remote_group_id: null, description: '' };

describe('macvtap secure: usage and input errors (before the kernel is touched)', () => {
  it.each([
    [[], /secure takes one DEV/],
    [['a', 'b', '--mac', MAC], /secure takes one DEV/],
    [['--show', '--remove', 'mvt0'], /--show or --remove, not both/],
    [['--show', 'mvt0', '--mac', MAC], /--show takes DEV, --netns and --json only, not --mac/],
    [['--remove', 'mvt0', '--ip', '10.0.0.1', '--owner', 'x'], /--remove takes DEV and --netns only, not --ip, --owner/],
    [['--remove', 'mvt0', '--json'], /--remove takes DEV and --netns only, not --json/],
    [['mvt0', '--ip', '10.0.0.1'], /needs --mac MAC/],
    [['mvt0', '--mac', MAC, '--pair', ',fa:16:3e:00:00:01'], /--pair takes IP\[,MAC\]/],
    [['mvt0', '--mac', MAC, '--pair', '10.0.0.9,a,b'], /--pair takes IP\[,MAC\]/],
    [['mvt0', '--mac', MAC, '--frob'], /Unknown option '--frob'/],
  ])('%j → usage error, exit 2', (args, message) => {
    const r = macvtap(['secure', ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/Usage: macvtap/);
    expect(r.stderr).toMatch(/secure --show DEV/);
    expect(r.stdout).toBe('');
  });

  it('a rules file that cannot be read, is not JSON, or holds no rules: exit 1 with the reason', () => {
    const missing = macvtap(['secure', 'mvt0', '--mac', MAC, '--rules', join(work, 'nonexistent.json')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read .*nonexistent\.json: ENOENT/);
    const notJson = macvtap(['secure', 'mvt0', '--mac', MAC, '--rules', file('bad.json', '[{')]);
    expect(notJson.code).toBe(1);
    expect(notJson.stderr).toMatch(/bad\.json is not JSON/);
    const shape = macvtap(['secure', 'mvt0', '--mac', MAC, '--rules', '-'], '{"security_groups": []}');
    expect(shape.code).toBe(1);
    expect(shape.stderr).toMatch(/stdin is neither a JSON array of Neutron security group rules nor a Neutron response/);
  });

  it("a bad address or rule is the library's TypeError naming the field, exit 1", () => {
    const ip = macvtap(['secure', 'mvt0', '--mac', MAC, '--ip', '10.0.0.500']);
    expect(ip.code).toBe(1);
    expect(ip.stderr).toMatch(/"policy\.ips\[0\]" option is not an IPv4 or IPv6 address/);
    const mac = macvtap(['secure', 'mvt0', '--mac', '01:00:5e:00:00:01']);
    expect(mac.code).toBe(1);
    expect(mac.stderr).toMatch(/"policy\.mac" option must be a unicast/);
    const rule = macvtap(['secure', 'mvt0', '--mac', MAC, '--rules', '-'], JSON.stringify([SSH, { ...SSH, remote_group_id: 'g1' }]));
    expect(rule.code).toBe(1);
    expect(rule.stderr).toMatch(/rules\[1\]\.remote_group_id/);
  });
});

describeNeeding('macvtap secure on a real macvtap', nftUnavailable, () => {
  let tb: Testbed;
  const DEV = 'mvts0';
  beforeEach(() => {
    tb = makeTestbed(17);
    try {
      // Made with ip, not the library: the fixture never depends on the code under test.
      tb.host.ip('link', 'add', 'link', tb.lower, 'name', DEV, 'type', 'macvtap', 'mode', 'bridge');
    } catch (e) {
      tb.destroy();
      throw e;
    }
  });
  afterEach(() => tb.destroy());

  it('applies MAC, fixed IPs and allowed pairs to the device, as nft lists them; --show text and --json agree', () => {
    const ns = tb.host.name;
    const r = macvtap(['secure', DEV, '--netns', ns, '--mac', MAC, '--ip', '10.200.17.5', '--ip', '2001:db8::5',
      '--pair', '10.200.17.96/28', '--pair', '10.200.17.200,fa:16:3e:00:00:02', '--owner', 'clitest']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${DEV}: port security applied (table netdev mvtps-${DEV}): 2 MAC(s), 3 IPv4 and 3 IPv6 source pair(s), security groups off\n`);

    const nft = nftTable(tb.host, `mvtps-${DEV}`);
    expect(nft).not.toBeNull();
    const { ifindex } = tb.host.ipLink(DEV);
    expect(nft!.chains).toEqual({ 'from-guest': { hook: 'egress' }, 'to-guest': { hook: 'ingress' } });
    expect(nft!.devices).toEqual([DEV, DEV]);
    expect(nft!.comment).toMatch(new RegExp(`^macvtap-ps ifindex=${ifindex} owner=macvtap:clitest:\\d+:\\d+$`));
    expect(nft!.sets.macs!.sort()).toEqual(['fa:16:3e:00:00:02', MAC]);
    expect(nft!.sets.pairs4!.sort()).toEqual([`${MAC} . 10.200.17.5`, `${MAC} . 10.200.17.96/28`, 'fa:16:3e:00:00:02 . 10.200.17.200'].sort());
    expect(nft!.sets.pairs6).toContain(`${MAC} . 2001:db8::5`);
    // Each allowed MAC's EUI-64 link-local address, for neighbour discovery.
    expect(nft!.sets.pairs6).toContain(`${MAC} . fe80::f816:3eff:fe12:3456`);
    expect(nft!.sets.pairs6).toContain('fa:16:3e:00:00:02 . fe80::f816:3eff:fe00:2');
    expect(nft!.sets['sg-ingress4-ports']).toEqual([]);

    const show = macvtap(['secure', '--show', DEV, '--netns', ns]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`^table netdev mvtps-${DEV}: device ${DEV} ifindex ${ifindex} owner macvtap:clitest:\\d+:\\d+$`, 'm'));
    expect(show.stdout).toMatch(/^ {4}security groups off \(anti-spoofing only\)$/m);
    expect(show.stdout).toMatch(new RegExp(`^ {4}set macs \\(2\\): fa:16:3e:00:00:02, ${MAC}$`, 'm'));
    expect(show.stdout).toMatch(/^ {4}set pairs4 \(3\): /m);
    expect(show.stdout).toMatch(/^DROPPED\s+PACKETS\s+BYTES$/m);
    for (const why of ['spoofed-mac', 'spoofed-arp', 'spoofed-ipv4', 'spoofed-ipv6', 'spoofed-nd', 'dhcp-server', 'router-advert', 'ethertype']) {
      expect(show.stdout).toMatch(new RegExp(`^${why}\\s+0\\s+0$`, 'm'));
    }

    const json = macvtap(['secure', '--show', DEV, '--netns', ns, '--json']);
    expect(json.code).toBe(0);
    const state = JSON.parse(json.stdout) as PortSecurityState;
    expect(state).toMatchObject({ table: `mvtps-${DEV}`, device: DEV, ifindex, securityGroups: false });
    expect(state.owner).toMatch(/^macvtap:clitest:/);
    for (const set of ['macs', 'pairs4', 'pairs6']) expect(state.sets[set]!.sort()).toEqual(nft!.sets[set]!.sort());
    expect(state.dropped['spoofed-ipv4']).toEqual({ packets: 0, bytes: 0 });
  });

  it('rules from a file (a Neutron API response) and from stdin (a bare array) land in the security group sets', () => {
    const ns = tb.host.name;
    const fromFile = macvtap(['secure', DEV, '--netns', ns, '--mac', MAC, '--ip', '10.200.17.5',
      '--rules', file('rules.json', JSON.stringify({ security_group_rules: [NEUTRON_RULE, DNS] }))]);
    expect(fromFile.stderr).toBe('');
    expect(fromFile.code).toBe(0);
    expect(fromFile.stdout).toMatch(/security groups on, 2 rule\(s\)$/m);
    let nft = nftTable(tb.host, `mvtps-${DEV}`)!;
    expect(nft.sets['sg-ingress4-ports']).toEqual(['0.0.0.0/0 . tcp . 22']);
    expect(nft.sets['sg-egress4-ports']).toEqual(['192.0.2.0/24 . udp . 53']);
    expect(macvtap(['secure', '--show', DEV, '--netns', ns]).stdout).toMatch(/^ {4}security groups on \(stateless\)$/m);

    // Applying again replaces the whole ruleset: only the stdin rules are left, the MAC is the new one.
    const fromStdin = macvtap(['secure', DEV, '--netns', ns, '--mac', 'fa:16:3e:00:00:09', '--ip', '10.200.17.6', '--rules', '-', '--json'],
      JSON.stringify([{ direction: 'ingress', ethertype: 'IPv6', protocol: 'icmp', port_range_min: 128 }]));
    expect(fromStdin.stderr).toBe('');
    expect(fromStdin.code).toBe(0);
    const state = JSON.parse(fromStdin.stdout) as PortSecurityState;
    expect(state.securityGroups).toBe(true);
    nft = nftTable(tb.host, `mvtps-${DEV}`)!;
    expect(nft.sets.macs).toEqual(['fa:16:3e:00:00:09']);
    expect(nft.sets.pairs4).toEqual(['fa:16:3e:00:00:09 . 10.200.17.6']);
    expect(nft.sets['sg-ingress4-ports']).toEqual([]);
    expect(nft.sets['sg-egress4-ports']).toEqual([]);
    // ICMPv6 echo request (type 128), any code (nft names code 0 of icmpv6_code "no-route").
    expect(nft.sets['sg-ingress6-icmp']).toEqual(['::/0 . echo-request . no-route-255']);
    expect(state.sets['sg-ingress6-icmp']).toHaveLength(1);
  });

  it('a refused rule leaves no table behind; an unknown device is ENODEV', () => {
    const ns = tb.host.name;
    const r = macvtap(['secure', DEV, '--netns', ns, '--mac', MAC, '--rules', '-'], JSON.stringify([{ ...SSH, stateful: true }]));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/rules\[0\]\.stateful/);
    expect(nftTable(tb.host, `mvtps-${DEV}`)).toBeNull();
    const gone = macvtap(['secure', 'mvtnope', '--netns', ns, '--mac', MAC]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/ENODEV/);
  });

  it('--remove deletes the table, and says so; a second --remove says there was none (exit 0 both times)', () => {
    const ns = tb.host.name;
    expect(macvtap(['secure', DEV, '--netns', ns, '--mac', MAC, '--ip', '10.200.17.5']).code).toBe(0);
    expect(nftTable(tb.host, `mvtps-${DEV}`)).not.toBeNull();
    const first = macvtap(['secure', '--remove', DEV, '--netns', ns]);
    expect(first.code).toBe(0);
    expect(first.stdout).toBe(`${DEV}: port security removed (table netdev mvtps-${DEV} deleted)\n`);
    expect(nftTable(tb.host, `mvtps-${DEV}`)).toBeNull();
    const second = macvtap(['secure', '--remove', DEV, '--netns', ns]);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe(`${DEV}: had no port security, nothing removed\n`);
    const show = macvtap(['secure', '--show', DEV, '--netns', ns]);
    expect(show.code).toBe(0);
    expect(show.stdout).toBe(`${DEV}: no port security (no table netdev mvtps-${DEV})\n`);
    expect(macvtap(['secure', '--show', DEV, '--netns', ns, '--json']).stdout).toBe('null\n');
  });

  it('a table of that name not made by this package is neither replaced, shown nor removed', () => {
    const ns = tb.host.name;
    tb.host.exec('nft', [`add table netdev mvtps-${DEV} { comment "someone else"; }`]);
    const apply = macvtap(['secure', DEV, '--netns', ns, '--mac', MAC]);
    expect(apply.code).toBe(1);
    expect(apply.stderr).toMatch(/EEXIST.*not made by this package/);
    expect(macvtap(['secure', '--show', DEV, '--netns', ns, '--json']).stdout).toBe('null\n');
    expect(macvtap(['secure', '--remove', DEV, '--netns', ns]).stdout).toBe(`${DEV}: had no port security, nothing removed\n`);
    expect(nftTable(tb.host, `mvtps-${DEV}`)?.comment).toBe('someone else');
  });
});
