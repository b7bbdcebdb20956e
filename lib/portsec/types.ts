/** Public types of port security (`applyPortSecurity` and friends). */
import type { NetnsOption } from '../types.js';

/**
 * One security group rule in Neutron's API shape (`GET /v2.0/security-group-rules` returns a list of these; pass it
 * as it comes: descriptive fields such as `id`, `security_group_id`, `project_id`, `created_at` are accepted and
 * ignored). Rules allow; what no rule allows is dropped (for IPv4/IPv6 only: ARP and the neighbour discovery, MLD
 * and DHCP client exchanges a port needs pass as Neutron lets them pass).
 *
 * **Stateless**: a rule matches packets one by one, as Neutron's `stateful: false` groups do. The netdev hooks have
 * no connection tracking, so the return traffic of a connection needs its own rule (e.g. egress TCP 22 from the
 * guest's server needs an egress rule for its source port, or a rule for the remote's ephemeral ports).
 */
export interface SecurityGroupRule {
  /** `ingress`: traffic to the guest; `egress`: traffic from the guest. */
  direction: 'ingress' | 'egress';
  ethertype: 'IPv4' | 'IPv6';
  /**
   * A Neutron protocol name (`tcp`, `udp`, `icmp`, `icmpv6`/`ipv6-icmp`, `sctp`, `dccp`, `udplite`, `gre`, `esp`,
   * `ah`, `vrrp`, …), an IP protocol number (number or digit string), or `null`/`'any'`/absent for every protocol.
   * `icmp` in an IPv6 rule means ICMPv6, as in Neutron.
   */
  protocol?: string | number | null;
  /** TCP/UDP/SCTP/DCCP/UDP-Lite: first destination port (with `port_range_max`). ICMP: the type. */
  port_range_min?: number | null;
  /** TCP/UDP/SCTP/DCCP/UDP-Lite: last destination port. ICMP: the code (needs a type). */
  port_range_max?: number | null;
  /** The remote side (source for ingress, destination for egress), an address or prefix of the rule's ethertype. */
  remote_ip_prefix?: string | null;
  /** Must be absent or `null`: expand a remote group to its members' prefixes first (one rule each). */
  remote_group_id?: string | null;
  /** Must be absent or `null`, as `remote_group_id`. */
  remote_address_group_id?: string | null;
  /** Must not be `true`: see the stateless note above. */
  stateful?: boolean;
  [info: string]: unknown;
}

/** An allowed address pair: Neutron's `{ ip_address, mac_address }` (that spelling is accepted too). */
export interface AllowedAddressPair {
  /** An address or prefix the guest may send from (IPv4 or IPv6). */
  ip: string;
  /** The MAC it may send that address from; the port's MAC when absent. */
  mac?: string | null;
}

/** What {@link applyPortSecurity} enforces on a port. */
export interface PortSecurityPolicy {
  /** The port's MAC: frames from the guest must carry it (or an allowed pair's MAC) as source. */
  mac: string;
  /** The port's fixed IPs (addresses or prefixes, IPv4 and IPv6): the source addresses the guest may use. */
  ips: readonly string[];
  /** More (address, MAC) combinations the guest may send from (VRRP, keepalived, nested containers). */
  allowedAddressPairs?: readonly (AllowedAddressPair | { ip_address: string; mac_address?: string | null })[];
  /**
   * Security group rules (the union of the port's groups, remote groups expanded). Absent: no security groups, only
   * anti-spoofing. An empty list: every IPv4/IPv6 packet dropped in both directions but the ones a port needs (ARP,
   * neighbour discovery, MLD, DHCP client).
   */
  rules?: readonly SecurityGroupRule[];
  /** Must be absent or `false`: stateful groups cannot be enforced at the netdev hooks (see {@link SecurityGroupRule}). */
  stateful?: false;
}

/** Options of {@link applyPortSecurity}. */
export interface PortSecurityOptions extends NetnsOption {
  /**
   * Owner recorded in the table's comment (default `'macvtap'`), as links carry it: {@link gc} with an `owner` only
   * removes that owner's tables.
   */
  owner?: string;
}

/** A drop counter of the installed ruleset: packets and bytes it dropped since the last apply. */
export interface DropCounter { packets: number; bytes: number }

/** What {@link getPortSecurity} reads back from the kernel. */
export interface PortSecurityState {
  /** The nftables table (`netdev` family) holding the port's chains: `mvtps-<device>`. */
  table: string;
  /**
   * The device the chains are bound to; `null` when the table has no chains (a kernel that deletes a netdev chain with
   * its device, 6.1 for one, did so: the table is garbage for {@link gc}).
   */
  device: string | null;
  /**
   * The hook of `device` holding the checks of what the guest sends (chain `from-guest`): `egress` on a macvtap or
   * macvlan, `ingress` on a tap or veth end (the guest is across it); `null` with `device`.
   */
  fromGuestHook: 'egress' | 'ingress' | null;
  /** The ifindex the table was applied to; differs from the device's when the device was replaced since. */
  ifindex: number;
  /** The owner tag written when it was applied (`macvtap:<owner>:<pid>:<starttime>`). */
  owner: string;
  /** Whether security group rules are enforced (otherwise anti-spoofing only). */
  securityGroups: boolean;
  /** Each set's elements as nft prints them (`macs`, `pairs4`, `pairs6`, `sg-ingress4-ports`, …). */
  sets: Record<string, string[]>;
  /**
   * Drop counters by reason: `spoofed-mac`, `ethertype`, `spoofed-arp`, `spoofed-ipv4`, `dhcp-server`, `spoofed-ipv6`,
   * `router-advert`, `spoofed-nd`, and with security groups `sg-ingress-ipv4`, `sg-ingress-ipv6`,
   * `sg-egress-ipv4`, `sg-egress-ipv6` — in that order, whatever the order of the rules.
   */
  dropped: Record<string, DropCounter>;
}
