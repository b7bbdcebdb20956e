/**
 * The independent view of a port-security table: `nft` (the nftables CLI, Debian's `nftables` package) run inside the
 * namespace with `ip netns exec`, its JSON and text listings parsed here, never with the library's reader.
 */
import { spawnSync } from 'node:child_process';
import type { TestNetns } from '../../bench/testbed/netns.js';

/** Why `nft` cannot run here, or `null` when it can. */
export const nftUnavailable: string | null = (() => {
  const r = spawnSync('sh', ['-c', 'command -v nft'], { stdio: 'ignore' });
  return r.status === 0 ? null : 'nft is not installed (apt-get install nftables)';
})();

/** What `nft -j list table netdev NAME` shows, reduced to what tests compare. */
export interface NftTable {
  /**
   * Each set's elements, written `a . b` for concatenations, `addr/len` for prefixes, `lo-hi` for ranges: the sets of
   * the live generation (the one the rules look up), under their names without the generation suffix.
   */
  sets: Record<string, string[]>;
  /** The live generation's suffix (`a` or `b`), from the rules' `@macs-…` lookup; `null` when no rule looks one up. */
  generation: string | null;
  /** Base chains by name: their hook (`egress`, `ingress`). */
  chains: Record<string, { hook?: string }>;
  /** The `device "…"` each base chain is bound to, from the text listing (nft 1.0's JSON leaves it out). */
  devices: string[];
  /** The table's comment, from the text listing (nft 1.0's JSON leaves it out). */
  comment: string | null;
}

function text(e: unknown): string {
  if (typeof e === 'string' || typeof e === 'number') return String(e);
  const o = e as Record<string, unknown>;
  if (Array.isArray(o.concat)) return o.concat.map(text).join(' . ');
  if (Array.isArray(o.range)) return `${text(o.range[0])}-${text(o.range[1])}`;
  if (o.prefix) {
    const p = o.prefix as { addr: string; len: number };
    return `${p.addr}/${p.len}`;
  }
  return JSON.stringify(e);
}

/** `nft -j list table netdev NAME` in `ns`, parsed; `null` when there is no such table. */
export function nftTable(ns: TestNetns, table: string): NftTable | null {
  const r = spawnSync('ip', ['netns', 'exec', ns.name, 'nft', '-j', 'list', 'table', 'netdev', table], { encoding: 'utf8' });
  if (r.status !== 0) {
    if (/No such file or directory/.test(r.stderr)) return null;
    throw new Error(`nft -j list table netdev ${table} failed: ${r.stderr}`);
  }
  const out: NftTable = { sets: {}, chains: {}, devices: [], comment: null, generation: null };
  const objects = (JSON.parse(r.stdout) as { nftables: Record<string, unknown>[] }).nftables;
  // Sets come in generations (`macs-a`, `macs-b`: a replace fills the other one, then swaps the rules over); the live
  // one is the one the rules look up.
  const rules = JSON.stringify(objects.filter((o) => o.rule !== undefined));
  out.generation = /"@macs-([a-z])"/.exec(rules)?.[1] ?? null;
  for (const o of objects) {
    const set = o.set as { name: string; elem?: unknown[] } | undefined;
    if (set && out.generation !== null && set.name.endsWith(`-${out.generation}`)) out.sets[set.name.slice(0, -2)] = (set.elem ?? []).map(text);
    const chain = o.chain as { name: string; hook?: string } | undefined;
    if (chain?.hook !== undefined) out.chains[chain.name] = { hook: chain.hook };
  }
  const listing = ns.exec('nft', ['list', 'table', 'netdev', table]);
  out.devices = [...listing.matchAll(/hook \w+ device "([^"]+)"/g)].map((m) => m[1] as string);
  out.comment = /^\s*comment "([^"]*)"/m.exec(listing)?.[1] ?? null;
  return out;
}

/** Names of the netdev tables in `ns` (`nft list tables netdev`). */
export function nftTables(ns: TestNetns): string[] {
  return [...ns.exec('nft', ['list', 'tables', 'netdev']).matchAll(/^table netdev (\S+)$/gm)].map((m) => m[1] as string);
}
