/**
 * The ids of the topologies topology.ts builds, apart from the code that builds them, so the report side (schemas,
 * tables, charts, `--compare`) loads without the library.
 */

/** The unfiltered topologies (see topology.ts for what each is). */
export const BASE_TOPOLOGY_IDS = ['macvtap-bridge', 'macvtap-vepa', 'tap+linuxbridge', 'tap+ovs', 'veth-direct'] as const;

/** Security group rule counts the secured topologies come with: 0 = port security (anti-spoofing) only. */
export const RULE_COUNTS = [0, 10, 100] as const;

/**
 * The secured topologies: one of three attachments carrying the same port policy (secpolicy.ts) with N security group
 * rules, N from {@link RULE_COUNTS}: `macvtap-bridge+nftN` (nftables netdev hooks on the macvtap), `tap+linuxbridge+nftN`
 * (the same ruleset on the tap's netdev hooks), `tap+ovs+flowsN` (OpenFlow anti-spoofing and rule flows, as Neutron's
 * OVS firewall driver installs them, stateless).
 */
export const SECURED_TOPOLOGY_IDS = [
  'macvtap-bridge+nft0', 'macvtap-bridge+nft10', 'macvtap-bridge+nft100',
  'tap+linuxbridge+nft0', 'tap+linuxbridge+nft10', 'tap+linuxbridge+nft100',
  'tap+ovs+flows0', 'tap+ovs+flows10', 'tap+ovs+flows100',
] as const;

/** Topology ids in the order the datapath benchmark interleaves them. */
export const TOPOLOGY_IDS = [...BASE_TOPOLOGY_IDS, ...SECURED_TOPOLOGY_IDS] as const;
/** One topology id. */
export type TopologyId = (typeof TOPOLOGY_IDS)[number];
/** An unfiltered topology's id. */
export type BaseTopologyId = (typeof BASE_TOPOLOGY_IDS)[number];

/** What a topology id means: the attachment it is built on and the filter it carries (`null`: none). */
export interface TopologyParts {
  base: BaseTopologyId;
  filter: null | { kind: 'nft' | 'flows'; rules: number };
}

/** Splits an id into its attachment and filter (`tap+ovs+flows100` → `tap+ovs`, flows, 100 rules). */
export function topologyParts(id: TopologyId): TopologyParts {
  const m = /^(.*)\+(nft|flows)(\d+)$/.exec(id);
  if (!m) return { base: id as BaseTopologyId, filter: null };
  return { base: m[1] as BaseTopologyId, filter: { kind: m[2] as 'nft' | 'flows', rules: Number(m[3]) } };
}
