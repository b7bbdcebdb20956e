/**
 * Port security and security groups on a macvtap (or any device): nftables `netdev` chains bound to the device, run
 * through libnftables (loaded at the first call; Debian's `libnftables1`). See ruleset.ts for the ruleset and why a
 * replace is atomic, policy.ts for what is checked before the kernel sees anything.
 */
import { binding } from '../binding.js';
import { callNative, invalidValue, MacvtapError } from '../errors.js';
import { getLink } from '../link.js';
import { ownerOption, ownerTag, DEFAULT_OWNER } from '../owner.js';
import type { LinkInfo, LinkRef, Netns, NetnsOption } from '../types.js';
import * as v from '../validate.js';
import { formatAddress, macText, V6 } from './addr.js';
import { compilePolicy } from './policy.js';
import { applyCommands, DROP_REASONS, guestHooks, liveGeneration, parseTableComment, tableName, type Gen } from './ruleset.js';
import type { DropCounter, PortSecurityOptions, PortSecurityPolicy, PortSecurityState } from './types.js';

/** `os.release()`, loaded at the first apply (node:os is not needed by anything else at import time). */
function release(): string {
  return process.getBuiltinModule('node:os').release();
}

let kernelRelease: () => string = release;

/**
 * Replaces the kernel release the egress-hook check reads (`os.release()`), for tests of the refusal on kernels older
 * than 5.16; `null` restores it. @internal
 */
export function setKernelReleaseForTests(fn: (() => string) | null): void {
  kernelRelease = fn ?? release;
}

/** The first kernel with the netdev `egress` hook. */
const EGRESS_HOOK_KERNEL = [5, 16] as const;

function checkEgressHook(device: string): void {
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease());
  if (m === null) return; // an unparseable release: let the kernel answer
  const [maj, min] = [Number(m[1]), Number(m[2])];
  if (maj > EGRESS_HOOK_KERNEL[0] || (maj === EGRESS_HOOK_KERNEL[0] && min >= EGRESS_HOOK_KERNEL[1])) return;
  throw new MacvtapError(
    { code: 'EOPNOTSUPP', errno: -95, syscall: 'nftables', device },
    `EOPNOTSUPP: Operation not supported, nftables '${device}' — port security needs the nftables netdev egress hook ` +
    `(what a macvtap's guest sends, what goes to a tap's guest), which needs Linux 5.16 or later (this kernel: ${kernelRelease()})`,
  );
}

/** Device names that are nft identifiers once prefixed (nft 1.0 does not take quoted table names). */
const NFT_SAFE_NAME = /^[A-Za-z0-9_.-]{1,15}$/;

async function resolve(link: LinkRef, ns: Netns | null): Promise<LinkInfo> {
  const info = await getLink(link, ns === null ? undefined : { netns: ns });
  if (!NFT_SAFE_NAME.test(info.name)) {
    throw invalidValue('link', `names a device (${JSON.stringify(info.name)}) whose name nftables cannot use in a table name: port security needs letters, digits, "_", "." and "-" only`, link);
  }
  return info;
}

function run(commands: string, json: boolean, device: string, ns: Netns | null): Promise<string> {
  return callNative(() => binding.nftRun(commands, { json, device }, ns));
}

/** nftables' "no such table" (not libnftables missing, which is ENOENT of `dlopen`). */
function isNoTable(e: unknown): boolean {
  return (e as { code?: string }).code === 'ENOENT' && (e as { syscall?: string }).syscall === 'nftables';
}

/** What a table of ours records (comment) and shows (its live set generation, the device and hook of `from-guest`). */
interface TableInfo { ifindex: number; owner: string; gen: Gen | null; bound: string | null; fromGuest: 'egress' | 'ingress' | null }

/**
 * What the table's comment says (read from nft's text listing: 1.0's JSON leaves the comments of tables out): `null`
 * when there is no table, `'foreign'` for a table of that name without our comment (never touched).
 */
async function tableInfo(device: string, ns: Netns | null): Promise<TableInfo | 'foreign' | null> {
  let text: string;
  try {
    text = await run(`list table netdev ${tableName(device)}`, false, device, ns);
  } catch (e) {
    if (isNoTable(e)) return null;
    throw e;
  }
  const m = /^\s*comment "([^"]*)"/m.exec(text);
  const tag = m && parseTableComment(m[1] as string);
  // The device the chains are bound to (1.0's JSON leaves it out too); none when the kernel deleted them with it.
  const chain = /\bchain from-guest \{[^}]*?\bhook (egress|ingress) device "([^"]+)"/.exec(text);
  if (!tag) return 'foreign';
  return { ...tag, gen: liveGeneration(text), bound: chain ? (chain[2] as string) : null, fromGuest: chain ? (chain[1] as 'egress' | 'ingress') : null };
}

/**
 * Enforces Neutron's port security and (stateless) security group rules on the frames of one device: on a macvtap (or
 * macvlan) the guest's frames at the device's nftables `netdev` **egress** hook (every frame written to its tap fd)
 * and frames to the guest at its **ingress** hook; on any other device (a tap behind a bridge, a veth end) the guest is
 * across the device, so the other way round (chains `from-guest` and `to-guest`, on the hooks that fit). What it checks:
 * - from the guest: source MAC among the port's and its allowed pairs' MACs; IPv4/IPv6 source among the (MAC, address)
 *   pairs of its fixed IPs and allowed address pairs (prefixes allowed; each allowed MAC's EUI-64 link-local address
 *   too); ARP sender MAC/IP the same way (ARP probes from 0.0.0.0 allowed); neighbour advertisements' target address
 *   and the link-layer address option of advertisements and solicitations; DHCP and DHCPv6 server replies and router
 *   advertisements dropped; DHCP client traffic from 0.0.0.0 and duplicate address detection from `::` allowed;
 *   ethertypes other than IPv4, IPv6 and ARP dropped (VLAN-tagged frames included);
 * - with `rules`: Neutron's security group rules, **stateless** (each packet on its own: the netdev family has no
 *   connection tracking, so `stateful: true` is refused). IPv4/IPv6 traffic that no rule allows is dropped in that
 *   direction; ARP, neighbour discovery, MLD and the DHCP client exchange pass, as in Neutron.
 *
 * Replacing the whole ruleset of a port is atomic for every packet: the new sets are made and filled in one nftables
 * transaction, then a second one swaps the rules over to them and deletes the old sets, so a packet meets the old
 * ruleset or the new one, never none and never a mix (ruleset.ts says why a single flush-and-refill transaction is
 * not). Applying the same policy again yields the same ruleset (counters reset). Lookups are sets, so a
 * packet costs the same with 1 or 1,000 addresses or rules. The table is `netdev mvtps-<device>`, commented with the
 * ifindex and `owner`; {@link removePortSecurity} removes it, {@link gc} removes it once its device is gone (kernels
 * from about 6.16 keep a netdev chain whose device was deleted and bind it to the next device of that name; 6.1
 * deletes the chains and leaves the empty table).
 *
 * Equivalent to: `nft -f FILE` with `add table netdev mvtps-DEV`, its `from-guest` and `to-guest` base chains, the
 * regular chain `from-guest-spoof4` (where an IPv4 frame whose (MAC, source) pair is not allowed is told apart) and its
 * sets (two batches when replacing; `nft list table netdev mvtps-DEV` shows the result).
 *
 * @example
 * ```ts
 * await applyPortSecurity('macvtap0', {
 *   mac: 'fa:16:3e:12:34:56', ips: ['10.0.0.5', '2001:db8::5'],
 *   allowedAddressPairs: [{ ip: '10.0.0.100' }],
 *   rules: [{ direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', port_range_min: 22, port_range_max: 22 }],
 * }, { netns: netnsPath('compute') });
 * ```
 * @throws TypeError/RangeError for a bad policy (before anything is sent); {@link MacvtapError}: `ENODEV` no such link,
 *   `EOPNOTSUPP` a kernel older than 5.16 (no egress hook), `ENOENT` with `syscall` `'dlopen'` when libnftables is not
 *   installed, the kernel's errno (`extack` = libnftables' text) when it refuses the ruleset.
 */
export async function applyPortSecurity(link: LinkRef, policy: PortSecurityPolicy, options?: PortSecurityOptions): Promise<void> {
  v.linkRef('link', link);
  const opts = v.options('options', options);
  v.knownKeys('options', opts, ['netns', 'owner']);
  const ns = v.nsOf(opts);
  const owner = opts.owner === undefined ? DEFAULT_OWNER : ownerOption(opts.owner);
  if (owner === false) throw invalidValue('owner', 'must be an owner name', false);
  const compiled = compilePolicy(policy);
  const info = await resolve(link, ns);
  checkEgressHook(info.name);
  const existing = await tableInfo(info.name, ns);
  if (existing === 'foreign') {
    throw new MacvtapError({ code: 'EEXIST', errno: -17, syscall: 'nftables', device: info.name },
      `EEXIST: File exists, nftables '${info.name}' — table netdev ${tableName(info.name)} exists and was not made by this package: left alone`);
  }
  const recreate = existing !== null && existing.ifindex !== info.ifindex;
  const live = existing === null ? { table: false as const } : { table: true as const, gen: existing.gen };
  for (const batch of applyCommands(info.name, info.ifindex, ownerTag(owner), compiled, live, recreate, guestHooks(info.kind))) {
    await run(batch, false, info.name, ns);
  }
}

/**
 * Removes the port's table (chains, sets, counters) so the device's frames pass unfiltered. Resolves `true` when
 * there was one, `false` when there was none (idempotent) or when the table of that name was not made by this package
 * (no comment of ours: left alone). The device need not exist any more: pass its name.
 *
 * Equivalent to: `nft delete table netdev mvtps-DEV`.
 * @throws TypeError for a bad name; {@link MacvtapError} for a refusal, `ENOENT`/`'dlopen'` without libnftables.
 */
export async function removePortSecurity(link: string, options?: NetnsOption): Promise<boolean> {
  const name = v.linkName('link', link);
  if (!NFT_SAFE_NAME.test(name)) return false; // never had a table: apply refuses such names
  const ns = v.netnsOnly(options);
  // A table of that name without our comment was not made here: left alone, as apply and gc leave it.
  const info = await tableInfo(name, ns);
  if (info === null || info === 'foreign') return false;
  try {
    await run(`delete table netdev ${tableName(name)}`, false, name, ns);
    return true;
  } catch (e) {
    if (isNoTable(e)) return false;
    throw e;
  }
}

interface NftJsonObject { [k: string]: unknown }

/**
 * The raw fields of the neighbour-discovery sets as what they are: a 48-bit link-layer address as a MAC, a 128-bit
 * target address as IPv6 (nft prints them as plain integers).
 */
function readable(element: string): string {
  return element.replace(/\b(0x[0-9a-f]{1,32}|[0-9]{13,})\b/g, (n) => {
    const x = BigInt(n);
    return x < 1n << 48n ? macText(x) : formatAddress(x, V6);
  });
}

function elementText(e: unknown): string {
  if (typeof e === 'string' || typeof e === 'number') return String(e);
  if (e !== null && typeof e === 'object') {
    const o = e as NftJsonObject;
    if (Array.isArray(o.concat)) return (o.concat as unknown[]).map(elementText).join(' . ');
    if (Array.isArray(o.range)) return `${elementText(o.range[0])}-${elementText(o.range[1])}`;
    const pfx = o.prefix as { addr: string; len: number } | undefined;
    if (pfx !== undefined) return `${pfx.addr}/${pfx.len}`;
    if (o.elem !== undefined) return elementText((o.elem as NftJsonObject).val);
  }
  return JSON.stringify(e);
}

/**
 * Reads back what the kernel holds for the port: the sets' elements and the drop counters by reason, `null` when
 * the device has no port security. The device need not exist any more (the table may outlive it: see
 * {@link applyPortSecurity}); pass its name.
 *
 * Equivalent to: `nft -j list table netdev mvtps-DEV`.
 */
export async function getPortSecurity(link: string, options?: NetnsOption): Promise<PortSecurityState | null> {
  const name = v.linkName('link', link);
  if (!NFT_SAFE_NAME.test(name)) return null;
  const ns = v.netnsOnly(options);
  const info = await tableInfo(name, ns);
  if (info === null || info === 'foreign') return null;
  let json: string;
  try {
    json = await run(`list table netdev ${tableName(name)}`, true, name, ns);
  } catch (e) {
    if (isNoTable(e)) return null; // removed in between
    throw e;
  }
  const objects = (JSON.parse(json) as { nftables: NftJsonObject[] }).nftables;
  const sets: Record<string, string[]> = {};
  const dropped: Record<string, DropCounter> = {};
  let sg = false;
  for (const o of objects) {
    const set = o.set as { name: string; elem?: unknown[] } | undefined;
    // Only the generation the rules use (a set of the other one is left only by an interrupted replace).
    if (set !== undefined && set.name.endsWith(`-${info.gen ?? 'a'}`)) sets[set.name.slice(0, -2)] = (set.elem ?? []).map(elementText).map(readable);
    const rule = o.rule as { comment?: string; expr?: NftJsonObject[] } | undefined;
    if (rule?.comment === undefined) continue;
    if (rule.comment.startsWith('sg-')) sg = true;
    const c = rule.expr?.find((x) => x.counter !== undefined)?.counter as DropCounter | undefined;
    if (c === undefined) continue;
    const acc = dropped[rule.comment] ?? { packets: 0, bytes: 0 };
    acc.packets += c.packets;
    acc.bytes += c.bytes;
    dropped[rule.comment] = acc;
  }
  // The documented order of reasons (the rules' order is an implementation detail), then any other comment.
  const rank = (k: string): number => { const i = DROP_REASONS.indexOf(k); return i < 0 ? DROP_REASONS.length : i; };
  const ordered = Object.fromEntries(Object.entries(dropped).sort(([a], [b]) => rank(a) - rank(b)));
  return {
    table: tableName(name), device: info.bound, fromGuestHook: info.fromGuest, ifindex: info.ifindex, owner: info.owner,
    securityGroups: sg, sets, dropped: ordered,
  };
}

/**
 * The port-security tables of a namespace whose device is gone or is another device now (the ifindex in the
 * comment is not the named device's): {@link gc}'s part. `owner` limits it to one owner's tables.
 * @internal
 */
export async function portSecurityGarbage(links: readonly LinkInfo[], ns: Netns | null, owner?: string): Promise<string[]> {
  let text: string;
  try {
    text = await run('list tables netdev', false, '', ns);
  } catch (e) {
    // No libnftables, or no nf_tables in this kernel: then there is nothing of ours to collect either.
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT' || code === 'EPROTONOSUPPORT' || code === 'EAFNOSUPPORT') return [];
    throw e;
  }
  const names = [...text.matchAll(/^table netdev (mvtps-[A-Za-z0-9_.-]{1,15})$/gm)].map((m) => m[1] as string);
  const byName = new Map(links.map((l) => [l.name, l.ifindex]));
  const garbage: string[] = [];
  for (const table of names) {
    const device = table.slice('mvtps-'.length);
    const info = await tableInfo(device, ns);
    if (info === null || info === 'foreign') continue;
    if (owner !== undefined && !info.owner.startsWith(`macvtap:${owner}:`)) continue;
    if (byName.get(device) !== info.ifindex) garbage.push(device);
  }
  return garbage;
}

export type { PortSecurityPolicy, PortSecurityOptions, PortSecurityState, SecurityGroupRule, AllowedAddressPair, DropCounter } from './types.js';
