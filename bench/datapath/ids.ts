/**
 * Topology ids of the datapath benchmark, apart from the code that builds them, so the report side (schema, tables,
 * charts, `--compare`) loads without the library's link calls.
 */

/** Topology ids in the order the benchmark interleaves them (see bench/datapath/topology.ts for what each is). */
export const TOPOLOGY_IDS = ['macvtap-bridge', 'macvtap-vepa', 'tap+linuxbridge', 'tap+ovs', 'veth-direct'] as const;
/** One topology id. */
export type TopologyId = (typeof TOPOLOGY_IDS)[number];
