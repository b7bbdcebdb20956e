/**
 * A port-security policy, validated and reduced to numbers: the allowed (MAC, source address) pairs of the port, and
 * its security group rules as boxes per direction and family. Everything that can be wrong with the input is found
 * here, before the kernel sees anything.
 * @internal
 */
import { invalidType, invalidValue, outOfRange } from '../errors.js';
import * as v from '../validate.js';
import { familyOf, linkLocalOf, macNumber, parsePrefix, V4, V6, type Family, type Range } from './addr.js';
import { disjointBoxes, type Box } from './boxes.js';
import type { PortSecurityPolicy, SecurityGroupRule } from './types.js';

/** Protocol names Neutron's API accepts (`neutron_lib.constants.IP_PROTOCOL_MAP`), as IP protocol numbers. */
export const PROTOCOLS: Readonly<Record<string, number>> = {
  ah: 51, dccp: 33, egp: 8, esp: 50, gre: 47, hopopt: 0, icmp: 1, icmpv6: 58, igmp: 2, ipip: 4, 'ipv6-encap': 41,
  'ipv6-frag': 44, 'ipv6-icmp': 58, 'ipv6-nonxt': 59, 'ipv6-opts': 60, 'ipv6-route': 43, ospf: 89, pgm: 113,
  rsvp: 46, sctp: 132, tcp: 6, udp: 17, udplite: 136, vrrp: 112,
};
/** Protocols with 16-bit source and destination ports first in their header (`th dport` reads them). */
const PORTED = new Set([6, 17, 33, 132, 136]);
const ICMP = 1;
const ICMPV6 = 58;

/** One direction and family of the rules: three kinds of lookups, each a set of disjoint boxes. */
export interface RuleBoxes {
  /** remote address × (protocol << 16 | destination port): TCP, UDP, SCTP, DCCP, UDP-Lite with ports. */
  ports: Box[];
  /** remote address × (type << 8 | code): ICMP/ICMPv6 with a type. */
  icmp: Box[];
  /** remote address × protocol: any protocol, a protocol without ports, ICMP without a type. */
  protos: Box[];
}

/** What the ruleset is built from. */
export interface CompiledPolicy {
  /** The port's MAC and the allowed pairs' MACs. */
  macs: bigint[];
  /** MAC × allowed source range, per family (the port's own addresses, pairs, and for IPv6 each MAC's link-local). */
  pairs4: Box[];
  pairs6: Box[];
  /** Security groups; `null` when the policy has none (anti-spoofing only). */
  rules: { ingress4: RuleBoxes; ingress6: RuleBoxes; egress4: RuleBoxes; egress6: RuleBoxes } | null;
}

const POLICY_KEYS = ['mac', 'ips', 'allowedAddressPairs', 'rules', 'stateful'] as const;
/** Fields of a Neutron rule that describe it but do not filter (accepted as the API returns them). */
const RULE_INFO_KEYS = [
  'id', 'tenant_id', 'project_id', 'security_group_id', 'description', 'revision_number', 'created_at',
  'updated_at', 'standard_attr_id', 'tags', 'normalized_cidr', 'belongs_to_default_sg', 'name',
];
const RULE_KEYS = [
  'direction', 'ethertype', 'protocol', 'port_range_min', 'port_range_max', 'remote_ip_prefix', 'remote_group_id',
  'remote_address_group_id', 'stateful', ...RULE_INFO_KEYS,
];

function unicastMac(option: string, x: unknown): bigint {
  const m = v.mac(option, x);
  if (v.macKind(m) !== 'unicast') throw invalidValue(option, 'must be a unicast MAC address', x);
  return macNumber(m.toLowerCase());
}

function prefixOf(option: string, x: unknown): { fam: Family; range: Range } {
  if (typeof x !== 'string') throw invalidType(option, 'an IP address or prefix (string)', x);
  const fam = familyOf(x);
  if (fam === null) throw invalidValue(option, 'is not an IPv4 or IPv6 address or prefix', x);
  const p = parsePrefix(x, fam);
  if ('error' in p) throw invalidValue(option, p.error, x);
  return { fam, range: p.range };
}

function emptyRules(): RuleBoxes {
  return { ports: [], icmp: [], protos: [] };
}

function optionalNumber(option: string, x: unknown, max: number): number | null {
  if (x === undefined || x === null) return null;
  return v.integer(option, x, 0, max);
}

/** The IP protocol number of a rule's `protocol`, `null` for any. Numbers may come as numbers or digit strings. */
function protocolOf(option: string, x: unknown, fam: Family): number | null {
  if (x === undefined || x === null || x === 'any') return null;
  let n: number | undefined;
  if (typeof x === 'number') n = v.integer(option, x, 0, 255);
  else if (typeof x === 'string') {
    n = /^[0-9]{1,3}$/.test(x) ? Number(x) : PROTOCOLS[x.toLowerCase()];
    if (n === undefined) throw invalidValue(option, `must be a protocol number 0–255 or one of ${Object.keys(PROTOCOLS).join(', ')}, or "any"`, x);
    if (n > 255) throw outOfRange(option, 'a protocol number from 0 to 255', x);
  } else {
    throw invalidType(option, 'a protocol name or number', x);
  }
  // Neutron stores "icmp" in an IPv6 rule as ICMPv6 (and the other way round is refused by it as ours does).
  if (fam.v6 && n === ICMP) return ICMPV6;
  if (!fam.v6 && n === ICMPV6) throw invalidValue(option, 'is ICMPv6, which an IPv4 rule cannot match', x);
  return n;
}

function compileRule(i: number, r: unknown, out: NonNullable<CompiledPolicy['rules']>): void {
  const at = `rules[${i}]`;
  if (!v.isPlainObject(r)) throw invalidType(at, 'a security group rule object', r);
  v.knownKeys(at, r, RULE_KEYS);
  if (r.stateful === true) throw statefulError(`${at}.stateful`);
  const dir = r.direction;
  if (dir !== 'ingress' && dir !== 'egress') throw invalidValue(`${at}.direction`, 'must be "ingress" or "egress"', dir);
  const et = r.ethertype;
  if (et !== 'IPv4' && et !== 'IPv6') throw invalidValue(`${at}.ethertype`, 'must be "IPv4" or "IPv6"', et);
  const fam = et === 'IPv6' ? V6 : V4;
  for (const k of ['remote_group_id', 'remote_address_group_id'] as const) {
    if (r[k] !== undefined && r[k] !== null) {
      throw invalidValue(`${at}.${k}`, 'cannot be matched here: expand the group to its members\' prefixes (remote_ip_prefix), one rule each', r[k]);
    }
  }
  let remote: Range = [0n, (1n << BigInt(fam.bits)) - 1n];
  if (r.remote_ip_prefix !== undefined && r.remote_ip_prefix !== null) {
    const p = prefixOf(`${at}.remote_ip_prefix`, r.remote_ip_prefix);
    if (p.fam !== fam) throw invalidValue(`${at}.remote_ip_prefix`, `is not an ${et} prefix (the rule's ethertype)`, r.remote_ip_prefix);
    remote = p.range;
  }
  const proto = protocolOf(`${at}.protocol`, r.protocol, fam);
  const min = optionalNumber(`${at}.port_range_min`, r.port_range_min, 65535);
  const max = optionalNumber(`${at}.port_range_max`, r.port_range_max, 65535);
  const target = out[`${dir}${fam.v6 ? '6' : '4'}` as const];

  if (proto === ICMP || proto === ICMPV6) {
    // Neutron's ICMP convention: port_range_min is the type, port_range_max the code.
    if (min !== null && min > 255) throw outOfRange(`${at}.port_range_min`, 'an ICMP type from 0 to 255', min);
    if (max !== null && max > 255) throw outOfRange(`${at}.port_range_max`, 'an ICMP code from 0 to 255', max);
    if (min === null && max !== null) throw invalidValue(`${at}.port_range_max`, 'is an ICMP code, which needs a type (port_range_min)', max);
    if (min === null) target.protos.push({ a: remote, b: [BigInt(proto), BigInt(proto)] });
    else {
      const t = BigInt(min) << 8n;
      target.icmp.push({ a: remote, b: max === null ? [t, t | 0xffn] : [t | BigInt(max), t | BigInt(max)] });
    }
    return;
  }
  if (proto !== null && PORTED.has(proto)) {
    if ((min === null) !== (max === null)) {
      throw invalidValue(`${at}.port_range_${min === null ? 'min' : 'max'}`, 'must be given with the other end of the range', null);
    }
    if (min !== null && max !== null && min > max) throw outOfRange(`${at}.port_range_max`, `>= port_range_min (${min})`, max);
    const p = BigInt(proto) << 16n;
    target.ports.push({ a: remote, b: min === null ? [p, p | 0xffffn] : [p | BigInt(min), p | BigInt(max as number)] });
    return;
  }
  if (min !== null || max !== null) {
    throw invalidValue(`${at}.port_range_min`, `is for TCP, UDP, SCTP, DCCP, UDP-Lite and ICMP only, not protocol ${r.protocol ?? 'any'}`, min ?? max);
  }
  target.protos.push({ a: remote, b: proto === null ? [0n, 255n] : [BigInt(proto), BigInt(proto)] });
}

/** The error for a stateful security group: there is no connection tracking at the netdev hooks. */
export function statefulError(option: string): TypeError {
  return invalidValue(option, 'cannot be true: rules at the netdev hooks are stateless (no connection tracking exists ' +
    'in the netdev family), so only Neutron\'s stateless groups (stateful: false) can be enforced; add the rules for ' +
    'the return traffic explicitly', true);
}

function disjoint(r: RuleBoxes): RuleBoxes {
  return { ports: disjointBoxes(r.ports), icmp: disjointBoxes(r.icmp), protos: disjointBoxes(r.protos) };
}

/** Validates `policy` and reduces it to what the ruleset needs. Throws TypeError/RangeError with Node's codes. */
export function compilePolicy(policy: PortSecurityPolicy): CompiledPolicy {
  if (!v.isPlainObject(policy)) throw invalidType('policy', 'an object', policy);
  v.knownKeys('policy', policy, POLICY_KEYS);
  if (policy.stateful !== undefined && policy.stateful !== false) {
    if (policy.stateful === true) throw statefulError('policy.stateful');
    throw invalidType('policy.stateful', 'false or undefined', policy.stateful);
  }
  const portMac = unicastMac('policy.mac', policy.mac);
  if (!Array.isArray(policy.ips)) throw invalidType('policy.ips', 'an array of IP addresses or prefixes', policy.ips);
  const macs = new Set<bigint>([portMac]);
  const pairs4: Box[] = [];
  const pairs6: Box[] = [];
  const add = (mac: bigint, p: { fam: Family; range: Range }): void => {
    (p.fam.v6 ? pairs6 : pairs4).push({ a: [mac, mac], b: p.range });
  };
  policy.ips.forEach((ip, i) => add(portMac, prefixOf(`policy.ips[${i}]`, ip)));
  const pairs = policy.allowedAddressPairs ?? [];
  if (!Array.isArray(pairs)) throw invalidType('policy.allowedAddressPairs', 'an array of { ip, mac? }', pairs);
  pairs.forEach((pair, i) => {
    const at = `policy.allowedAddressPairs[${i}]`;
    if (!v.isPlainObject(pair)) throw invalidType(at, 'an object { ip, mac? }', pair);
    v.knownKeys(at, pair, ['ip', 'mac', 'ip_address', 'mac_address']);
    // Neutron's API spelling (ip_address, mac_address) is accepted as it comes.
    const rec = pair as Record<string, unknown>;
    const ip = rec.ip ?? rec.ip_address;
    const macIn = rec.mac ?? rec.mac_address;
    const mac = macIn === undefined || macIn === null ? portMac : unicastMac(`${at}.mac`, macIn);
    macs.add(mac);
    add(mac, prefixOf(`${at}.ip`, ip));
  });
  // Every allowed MAC's EUI-64 link-local address, as Neutron allows it: IPv6 neighbour discovery needs it.
  for (const mac of macs) { const ll = linkLocalOf(mac); pairs6.push({ a: [mac, mac], b: [ll, ll] }); }

  let rules: CompiledPolicy['rules'] = null;
  if (policy.rules !== undefined) {
    if (!Array.isArray(policy.rules)) throw invalidType('policy.rules', 'an array of Neutron security group rules', policy.rules);
    const acc = { ingress4: emptyRules(), ingress6: emptyRules(), egress4: emptyRules(), egress6: emptyRules() };
    (policy.rules as readonly SecurityGroupRule[]).forEach((r, i) => compileRule(i, r, acc));
    rules = { ingress4: disjoint(acc.ingress4), ingress6: disjoint(acc.ingress6), egress4: disjoint(acc.egress4), egress6: disjoint(acc.egress6) };
  }
  return {
    macs: [...macs].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)),
    pairs4: disjointBoxes(pairs4),
    pairs6: disjointBoxes(pairs6),
    rules,
  };
}

