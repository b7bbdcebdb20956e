/**
 * The port policy of the secured topologies (installed with `applyPortSecurity` on the macvtap or the tap), and the
 * same policy as OpenFlow flows in the harness's OVS (the table layout of Neutron's OVS firewall driver, stateless).
 *
 * One generator ({@link benchPolicy}) makes the policy every secured topology gets: the guest's MAC and addresses, and
 * N security group rules shaped like a real group — TCP/UDP port ranges, ICMP types, protocol-only rules, IPv4 and
 * IPv6, remote prefixes from /16 to /32 and "any". The benchmark's own UDP traffic (peer port 7000 ⇄ guest port 7001)
 * is allowed by the **last** two rules (one per direction: stateless, the return traffic needs its own), and no other
 * rule allows it, so a filter that walked the rules one by one would pay for all the others first.
 */
import type { PortSecurityPolicy, SecurityGroupRule } from 'macvtap';

/** What the benchmark sends: UDP between the guest's port and the peer's, the peer in `peerNet/prefix`. */
export interface BenchTraffic { guestPort: number; peerPort: number; peerNet: string; prefix: number }

/** The IPv6 address the policy gives the guest besides its IPv4 one (a dual-stack port, as Neutron's usually are). */
export const GUEST_IP6 = 'fd77::1';

/**
 * N stateless security group rules, deterministic. With N ≥ 2 the last two allow the benchmark's traffic (ingress UDP
 * to the guest's port from the peer's /24, egress UDP to the peer's port); the N − 2 before them never match it (their
 * port ranges leave out 7000–7001 and their prefixes leave out 10.77.0.0/24).
 */
export function benchRules(n: number, traffic: BenchTraffic): SecurityGroupRule[] {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`rule count must be a whole number ≥ 0, got ${n}`);
  if (n === 0) return [];
  if (n === 1) throw new RangeError('one rule cannot allow both directions of the benchmark traffic: use 0 or ≥ 2');
  const out: SecurityGroupRule[] = [];
  // Neutron refuses a rule identical to one the group has (SecurityGroupRuleExists): the pattern below repeats every
  // 60 rules, so a repeat gets a remote of its own (a /32 of 198.18.0.0/15, a /128 of 2001:db8:eeee::/48).
  const seen = new Set<string>();
  for (let i = 0; out.length < n - 2; i++) {
    const dir: SecurityGroupRule['direction'] = i % 2 === 0 ? 'ingress' : 'egress';
    const v6 = i % 5 === 4;
    // Remote prefixes that never hold 10.77.0.0/24: 172.16/12 pieces, 192.168.x/24, documentation nets, or any.
    const v4prefixes = [`172.${16 + (i % 16)}.0.0/16`, `192.168.${i % 256}.0/24`, '0.0.0.0/0', `198.51.100.${i % 256}/32`, '203.0.113.0/24', '10.0.0.0/16'];
    const v6prefixes = [`2001:db8:${(i % 65536).toString(16)}::/48`, '::/0', `2001:db8:ffff::${(i % 65536).toString(16)}/128`];
    const remote = v6 ? v6prefixes[i % v6prefixes.length]! : v4prefixes[i % v4prefixes.length]!;
    const kind = i % 4;
    const base = { direction: dir, ethertype: v6 ? 'IPv6' : 'IPv4', remote_ip_prefix: remote } as const;
    if (kind === 0 || kind === 1) {
      // A port or a range, kept off 7000–7001 whatever the protocol: 22, 80–89, 443, 1000–1999, 3306, 8000–8999, …
      const ranges: [number, number][] = [[22, 22], [80, 89], [443, 443], [1000, 1999], [3306, 3306], [8000, 8999], [5432, 5432], [9100, 9199], [53, 53], [6379, 6379]];
      const [lo, hi] = ranges[i % ranges.length]!;
      out.push({ ...base, protocol: kind === 0 ? 'tcp' : 'udp', port_range_min: lo, port_range_max: hi });
    } else if (kind === 2) {
      // ICMP: echo request, destination unreachable with a code, or every type.
      const typed = [[8, null], [3, 4], [null, null]] as const;
      const [t, c] = typed[i % typed.length]!;
      out.push({ ...base, protocol: 'icmp', port_range_min: t, port_range_max: c });
    } else {
      // A protocol without ports (GRE, ESP, VRRP); from "any" only for ones the benchmark never sends.
      out.push({ ...base, protocol: ['gre', 'esp', 'vrrp'][i % 3]! });
    }
    const last = out[out.length - 1]!;
    if (seen.has(JSON.stringify(last))) {
      last.remote_ip_prefix = v6 ? `2001:db8:eeee::${i.toString(16)}/128` : `198.${18 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`;
    }
    seen.add(JSON.stringify(last));
  }
  out.push(
    {
      direction: 'ingress', ethertype: 'IPv4', protocol: 'udp', port_range_min: traffic.guestPort,
      port_range_max: traffic.guestPort, remote_ip_prefix: `${traffic.peerNet}/${traffic.prefix}`,
    },
    {
      direction: 'egress', ethertype: 'IPv4', protocol: 'udp', port_range_min: traffic.peerPort,
      port_range_max: traffic.peerPort, remote_ip_prefix: `${traffic.peerNet}/${traffic.prefix}`,
    },
  );
  return out;
}

/**
 * The guest port's policy with `rules` security group rules: its MAC, its IPv4 and IPv6 addresses; `rules` 0 means
 * port security (anti-spoofing) without security groups (the `rules` key absent, not an empty list, which would drop
 * every IP packet).
 */
export function benchPolicy(mac: string, ip: string, rules: number, traffic: BenchTraffic): PortSecurityPolicy {
  const p: PortSecurityPolicy = { mac, ips: [ip, GUEST_IP6] };
  if (rules > 0) p.rules = benchRules(rules, traffic);
  return p;
}

// ---------------------------------------------------------------------------------------------------------------
// OpenFlow: Neutron's OVS firewall driver's table layout, stateless.
// ---------------------------------------------------------------------------------------------------------------

/** IPv6 link-local (EUI-64) of a MAC, as the guest's kernel would form it. */
export function linkLocal6(mac: string): string {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  b[0] = b[0]! ^ 0x02;
  const w = [(b[0]! << 8) | b[1]!, (b[2]! << 8) | 0xff, (0xfe << 8) | b[3]!, (b[4]! << 8) | b[5]!];
  return `fe80::${w.map((x) => x.toString(16)).join(':')}`;
}

/**
 * A port range as value/mask pairs covering exactly it (Neutron's `port_rule_masking`): OpenFlow matches ports by
 * mask, not by range, so a range costs one flow per aligned block.
 */
export function portMasks(lo: number, hi: number): string[] {
  if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 0 && hi <= 0xffff && lo <= hi)) throw new RangeError(`bad port range ${lo}-${hi}`);
  if (lo === 0 && hi === 0xffff) return [];
  const out: string[] = [];
  let x = lo;
  while (x <= hi) {
    let size = 1;
    // The largest aligned block starting at x that stays within hi.
    while (size < 0x10000 && x % (size * 2) === 0 && x + size * 2 - 1 <= hi) size *= 2;
    out.push(size === 1 ? `${x}` : `0x${x.toString(16)}/0x${(0xffff & ~(size - 1)).toString(16)}`);
    x += size;
  }
  return out;
}

const PROTO_NUM: Record<string, number> = { gre: 47, esp: 50, ah: 51, vrrp: 112, sctp: 132 };

/** The match of one rule (without the table and action), one per masked port; `dir` names the remote field. */
function ruleMatches(r: SecurityGroupRule): string[] {
  const v6 = r.ethertype === 'IPv6';
  const remoteField = r.direction === 'ingress' ? (v6 ? 'ipv6_src' : 'nw_src') : (v6 ? 'ipv6_dst' : 'nw_dst');
  const remote = r.remote_ip_prefix && !/^(0\.0\.0\.0|::)\/0$/.test(r.remote_ip_prefix) ? `,${remoteField}=${r.remote_ip_prefix}` : '';
  const proto = r.protocol === undefined || r.protocol === null || r.protocol === 'any' ? null : String(r.protocol);
  if (proto === null) return [`${v6 ? 'ipv6' : 'ip'}${remote}`];
  if (proto === 'tcp' || proto === 'udp') {
    const m = `${proto}${v6 ? '6' : ''}${remote}`;
    const lo = r.port_range_min ?? 0;
    const hi = r.port_range_max ?? (r.port_range_min ?? 0xffff);
    const masks = r.port_range_min === undefined || r.port_range_min === null ? [] : portMasks(lo, hi);
    return masks.length ? masks.map((p) => `${m},tp_dst=${p}`) : [m];
  }
  if (proto === 'icmp' || proto === 'icmpv6' || proto === 'ipv6-icmp') {
    let m = `${v6 ? 'icmp6' : 'icmp'}${remote}`;
    if (r.port_range_min !== undefined && r.port_range_min !== null) m += `,icmp_type=${r.port_range_min}`;
    if (r.port_range_max !== undefined && r.port_range_max !== null) m += `,icmp_code=${r.port_range_max}`;
    return [m];
  }
  const n = PROTO_NUM[proto] ?? Number(proto);
  if (!Number.isInteger(n)) throw new RangeError(`protocol ${proto} has no number here`);
  return [`${v6 ? 'ipv6' : 'ip'}${remote},nw_proto=${n}`];
}

/**
 * The flows of one port, for `ovs-ofctl add-flows` (one per line, `#` comments allowed). Table layout (the numbers are
 * Neutron's OVS agent's, `neutron/plugins/ml2/drivers/openvswitch/agent/common/constants.py`, that its OVS firewall
 * driver uses):
 *
 * - table 0 (LOCAL_SWITCHING): from the guest's port → table 71; from the uplink → table 81; anything else dropped.
 * - table 71 (BASE_EGRESS): anti-spoofing. ARP with `dl_src`/`arp_sha` = the port's MAC and `arp_spa` = one of its
 *   addresses (or 0.0.0.0, a probe) → NORMAL; router solicitations, neighbour solicitations (`nd_sll` = the MAC or
 *   absent) and advertisements (`nd_target` = one of its addresses, `nd_tll` = the MAC) → NORMAL; DHCP client
 *   discovery from 0.0.0.0 → NORMAL; DHCP/DHCPv6 server replies and router advertisements → drop; IPv4/IPv6 with
 *   `dl_src` + `nw_src`/`ipv6_src` of the port → table 72; everything else (spoofed, other ethertypes) dropped.
 * - table 72 (RULES_EGRESS): one flow per egress rule and masked port (remote = `nw_dst`/`ipv6_dst`) → NORMAL, else
 *   drop. Without security groups: everything → NORMAL.
 * - table 81 (BASE_INGRESS): ARP, DHCP/DHCPv6 replies, neighbour discovery and MLD → NORMAL; IPv4/IPv6 to the port's
 *   MAC → table 82; else dropped.
 * - table 82 (RULES_INGRESS): one flow per ingress rule and masked port (remote = `nw_src`/`ipv6_src`) → NORMAL, else
 *   drop. Without security groups: everything → NORMAL.
 *
 * Stateless: no `ct()` anywhere, so every packet goes through the rules on its own (the driver's stateful mode sends
 * established connections through conntrack instead). Accepted traffic leaves by the NORMAL action, as the driver's
 * accept tables do (`ACCEPTED_*_TRAFFIC_NORMAL_TABLE`). Rules are plain matches (the driver uses conjunctive flows for
 * remote groups, which this policy, with prefixes only, does not have).
 */
export function ovsFlows(policy: PortSecurityPolicy, guestPort: string, uplink: string): string {
  const mac = policy.mac.toLowerCase();
  const v4 = policy.ips.filter((a) => !a.includes(':'));
  const v6 = [...policy.ips.filter((a) => a.includes(':')), linkLocal6(mac)];
  const f: string[] = [];
  const add = (table: number, priority: number, match: string, actions: string): void => {
    f.push(`table=${table},priority=${priority}${match ? `,${match}` : ''},actions=${actions}`);
  };
  f.push('# table 0: which way');
  add(0, 100, `in_port=${guestPort}`, 'resubmit(,71)');
  add(0, 100, `in_port=${uplink}`, 'resubmit(,81)');
  add(0, 0, '', 'drop');

  f.push('# table 71: anti-spoofing, from the guest');
  for (const ip of [...v4, '0.0.0.0']) add(71, 95, `arp,dl_src=${mac},arp_sha=${mac},arp_spa=${ip}`, 'NORMAL');
  add(71, 95, `icmp6,dl_src=${mac},icmp_type=133,icmp_code=0`, 'NORMAL');
  for (const sll of [mac, '00:00:00:00:00:00']) add(71, 95, `icmp6,dl_src=${mac},icmp_type=135,icmp_code=0,nd_sll=${sll}`, 'NORMAL');
  for (const ip of v6) {
    for (const tll of [mac, '00:00:00:00:00:00']) add(71, 95, `icmp6,dl_src=${mac},icmp_type=136,icmp_code=0,nd_target=${ip},nd_tll=${tll}`, 'NORMAL');
  }
  for (const t of [131, 132, 143]) add(71, 95, `icmp6,dl_src=${mac},icmp_type=${t}`, 'NORMAL');
  add(71, 94, `udp,dl_src=${mac},nw_src=0.0.0.0,nw_dst=255.255.255.255,tp_src=68,tp_dst=67`, 'NORMAL');
  add(71, 93, 'udp,tp_src=67,tp_dst=68', 'drop');
  add(71, 93, 'udp6,tp_src=547,tp_dst=546', 'drop');
  add(71, 93, 'icmp6,icmp_type=134', 'drop');
  add(71, 93, 'icmp6,icmp_type=135', 'drop');
  add(71, 93, 'icmp6,icmp_type=136', 'drop');
  for (const ip of v4) add(71, 90, `ip,dl_src=${mac},nw_src=${ip}`, 'resubmit(,72)');
  for (const ip of v6) add(71, 90, `ipv6,dl_src=${mac},ipv6_src=${ip}`, 'resubmit(,72)');
  add(71, 0, '', 'drop');

  const rules = policy.rules;
  f.push('# table 72: egress rules');
  if (rules === undefined) {
    add(72, 0, '', 'NORMAL');
  } else {
    for (const r of rules.filter((x) => x.direction === 'egress')) for (const m of ruleMatches(r)) add(72, 70, m, 'NORMAL');
    add(72, 0, '', 'drop');
  }

  f.push('# table 81: to the guest');
  add(81, 95, 'arp', 'NORMAL');
  add(81, 95, 'udp,tp_src=67,tp_dst=68', 'NORMAL');
  add(81, 95, 'udp6,tp_src=547,tp_dst=546', 'NORMAL');
  for (const t of [130, 131, 132, 143, 134, 135, 136, 137]) add(81, 95, `icmp6,icmp_type=${t}`, 'NORMAL');
  add(81, 90, `ip,dl_dst=${mac}`, 'resubmit(,82)');
  add(81, 90, `ipv6,dl_dst=${mac}`, 'resubmit(,82)');
  add(81, 0, '', 'drop');

  f.push('# table 82: ingress rules');
  if (rules === undefined) {
    add(82, 0, '', 'NORMAL');
  } else {
    for (const r of rules.filter((x) => x.direction === 'ingress')) for (const m of ruleMatches(r)) add(82, 70, m, 'NORMAL');
    add(82, 0, '', 'drop');
  }
  // Two rules can come down to the same match (OVS would keep one flow): list each once.
  return [...new Set(f)].join('\n') + '\n';
}
