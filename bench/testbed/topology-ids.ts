/**
 * The ids of the topologies topology.ts builds, apart from the code that builds them, so the report side (schemas,
 * tables, charts, `--compare`) loads without the library.
 */

/** Topology ids in the order the datapath benchmark interleaves them (see topology.ts for what each is). */
export const TOPOLOGY_IDS = ['macvtap-bridge', 'macvtap-vepa', 'tap+linuxbridge', 'tap+ovs', 'veth-direct'] as const;
/** One topology id. */
export type TopologyId = (typeof TOPOLOGY_IDS)[number];
