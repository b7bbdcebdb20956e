/**
 * The nftables ruleset of one port, as nft commands: a `netdev` table `mvtps-<device>` with a `from-guest` base chain
 * (every frame the guest sends) and a `to-guest` base chain (every frame on its way to the guest), each on the hook of
 * the device where those frames pass ({@link GuestHooks}: a macvtap transmits what the guest writes to its tap fd, a
 * tap receives it).
 *
 * Every lookup is a set: the anti-spoofing checks are one lookup each whatever the number of addresses, and the
 * security group rules are three lookups per direction and family (ports, ICMP type·code, protocol) whatever the number
 * of rules. Sets with intervals over concatenations hold disjoint boxes (see boxes.ts).
 *
 * Replacing is atomic, in two transactions. The sets of the new ruleset are made and filled first, under the other of
 * two generation suffixes (`macs-a` ↔ `macs-b`), referenced by nothing yet; the second transaction flushes the chains,
 * adds the rules that reference the new sets and deletes the old ones. Rules follow the nf_tables transaction
 * generation, so a packet meets the old rules (with the old sets) or the new rules (with the new sets). Flushing and
 * refilling a set in the same transaction as its rules is not atomic for concatenated interval sets (the kernel's
 * `pipapo` backend publishes new elements after the generation switch): measured on 6.18, 1,000 such replaces under load
 * dropped 0.3% of the frames both policies allow. The base chains (whose hook registration is not versioned) are never
 * deleted by a replace.
 * @internal
 */
import { formatRange, macText, V4, V6, type Family, type Range } from './addr.js';
import { splitPacked, type Box } from './boxes.js';
import type { CompiledPolicy, RuleBoxes } from './policy.js';

/** The table name for a device. */
export function tableName(device: string): string {
  return `mvtps-${device}`;
}

/** Prefix of the table comment: `macvtap-ps ifindex=N owner=TAG`. */
export const COMMENT_PREFIX = 'macvtap-ps';

/** The table comment that records what the table was applied to. */
export function tableComment(ifindex: number, owner: string): string {
  return `${COMMENT_PREFIX} ifindex=${ifindex} owner=${owner}`;
}

/** Parses a table comment written by {@link tableComment}; `null` for anything else. */
export function parseTableComment(comment: string): { ifindex: number; owner: string } | null {
  const m = /^macvtap-ps ifindex=([1-9][0-9]{0,9}) owner=([A-Za-z0-9_.:-]{1,100})$/.exec(comment);
  return m ? { ifindex: Number(m[1]), owner: m[2] as string } : null;
}

const hex = (n: bigint, bits: number): string => `0x${n.toString(16).padStart(bits / 4, '0')}`;

function rangeText(r: Range, f: (n: bigint) => string): string {
  return r[0] === r[1] ? f(r[0]) : `${f(r[0])}-${f(r[1])}`;
}

interface SetDef { name: string; decl: string; elements: string[] }

function ruleSets(dir: 'ingress' | 'egress', fam: Family, r: RuleBoxes | null): SetDef[] {
  const v = fam.v6 ? '6' : '4';
  const addr = fam.v6 ? 'ipv6_addr' : 'ipv4_addr';
  const icmp = fam.v6 ? 'icmpv6' : 'icmp';
  const a = (b: Box): string => formatRange(b.a, fam);
  const num = (n: bigint): string => String(n);
  return [
    {
      name: `sg-${dir}${v}-ports`, decl: `type ${addr} . inet_proto . inet_service; flags interval;`,
      elements: (r?.ports ?? []).flatMap((b) => splitPacked(b.b, 16).map((p) => `${a(b)} . ${rangeText(p.a, num)} . ${rangeText(p.b, num)}`)),
    },
    {
      name: `sg-${dir}${v}-icmp`, decl: `type ${addr} . ${icmp}_type . ${icmp}_code; flags interval;`,
      elements: (r?.icmp ?? []).flatMap((b) => splitPacked(b.b, 8).map((p) => `${a(b)} . ${rangeText(p.a, num)} . ${rangeText(p.b, num)}`)),
    },
    {
      name: `sg-${dir}${v}-protos`, decl: `type ${addr} . inet_proto; flags interval;`,
      elements: (r?.protos ?? []).map((b) => `${a(b)} . ${rangeText(b.b, num)}`),
    },
  ];
}

/** All sets of the table with their elements for `p` (every set exists whatever the policy, so replaces can flush). */
export function setDefs(p: CompiledPolicy): SetDef[] {
  const pairs = (boxes: Box[], fam: Family): string[] => boxes.flatMap((b) => {
    const out: string[] = [];
    for (let m = b.a[0]; m <= b.a[1]; m++) out.push(`${macText(m)} . ${formatRange(b.b, fam)}`);
    return out;
  });
  return [
    { name: 'macs', decl: 'type ether_addr;', elements: p.macs.map(macText) },
    // The same MACs as 48-bit integers, for the link-layer address option of neighbour discovery (a raw field).
    { name: 'nd-lladdr', decl: 'typeof @th,208,48;', elements: p.macs.map((m) => hex(m, 48)) },
    { name: 'pairs4', decl: 'type ether_addr . ipv4_addr; flags interval;', elements: pairs(p.pairs4, V4) },
    { name: 'pairs6', decl: 'type ether_addr . ipv6_addr; flags interval;', elements: pairs(p.pairs6, V6) },
    // pairs6 again with the address as a raw 128-bit field: the target address of a neighbour advertisement.
    {
      name: 'nd-target', decl: 'typeof ether saddr . @th,64,128; flags interval;',
      elements: p.pairs6.flatMap((b) => {
        const out: string[] = [];
        for (let m = b.a[0]; m <= b.a[1]; m++) out.push(`${macText(m)} . ${rangeText(b.b, (n) => hex(n, 128))}`);
        return out;
      }),
    },
    ...ruleSets('ingress', V4, p.rules?.ingress4 ?? null),
    ...ruleSets('ingress', V6, p.rules?.ingress6 ?? null),
    ...ruleSets('egress', V4, p.rules?.egress4 ?? null),
    ...ruleSets('egress', V6, p.rules?.egress6 ?? null),
  ];
}

/** ICMPv6 types a port needs in each direction whatever its groups (neighbour discovery, MLD), as Neutron allows. */
const ND_EGRESS = 'nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld-listener-done, mld2-listener-report';
const ND_INGRESS = 'mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect';

/** A set's name in generation `g`. */
export type Gen = 'a' | 'b';

function fromGuestRules(sg: boolean, g: Gen): string[] {
  const r = [
    // Anti-spoofing (Neutron's port security), first: nothing below may accept a frame it would drop.
    `ether saddr != @macs-${g} counter drop comment "spoofed-mac"`,
    `ether type != { ip, ip6, arp } counter drop comment "ethertype"`,
    `arp saddr ether . arp saddr ip @pairs4-${g} accept`,
    `arp saddr ip 0.0.0.0 arp saddr ether @macs-${g} accept`,
    `ether type arp counter drop comment "spoofed-arp"`,
    // DHCP client traffic before the guest has an address.
    `ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept`,
    `ether saddr . ip saddr != @pairs4-${g} counter drop comment "spoofed-ipv4"`,
    `udp sport 67 udp dport 68 counter drop comment "dhcp-server"`,
    // Duplicate address detection and the MLD reports sent with it come from the unspecified address.
    `ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld-listener-report, mld2-listener-report } accept`,
    `ether saddr . ip6 saddr != @pairs6-${g} counter drop comment "spoofed-ipv6"`,
    `icmpv6 type nd-router-advert counter drop comment "router-advert"`,
    `udp sport 547 udp dport 546 counter drop comment "dhcp-server"`,
    `icmpv6 type nd-neighbor-advert ether saddr . @th,64,128 != @nd-target-${g} counter drop comment "spoofed-nd"`,
    // The link-layer address option: nft reads fixed offsets only, and a receiver takes the option wherever it is
    // (the first of two, on Linux and the BSDs), so a solicitation or advertisement with options must carry an
    // allowed MAC's link-layer address option first; otherwise a forged one could hide behind a harmless first option.
    `icmpv6 type nd-neighbor-advert ip6 length > 24 @th,192,8 != 2 counter drop comment "spoofed-nd"`,
    `icmpv6 type nd-neighbor-advert ip6 length > 24 @th,208,48 != @nd-lladdr-${g} counter drop comment "spoofed-nd"`,
    `icmpv6 type nd-neighbor-solicit ip6 length > 24 @th,192,8 != 1 counter drop comment "spoofed-nd"`,
    `icmpv6 type nd-neighbor-solicit ip6 length > 24 @th,208,48 != @nd-lladdr-${g} counter drop comment "spoofed-nd"`,
  ];
  if (!sg) return r;
  return [
    ...r,
    `ether type arp accept`,
    `udp sport 68 udp dport 67 accept`,
    `udp sport 546 udp dport 547 accept`,
    `icmpv6 type { ${ND_EGRESS} } accept`,
    ...groupRules('egress', g),
  ];
}

function toGuestRules(sg: boolean, g: Gen): string[] {
  if (!sg) return [];
  return [
    `udp sport 67 udp dport 68 accept`,
    `udp sport 547 udp dport 546 accept`,
    `icmpv6 type { ${ND_INGRESS} } accept`,
    ...groupRules('ingress', g),
  ];
}

/**
 * The security group lookups of one direction, per family: three set lookups (ports, ICMP type·code, protocol) keyed
 * by the remote address (the source of what comes in, the destination of what goes out), then the drop.
 */
function groupRules(dir: 'ingress' | 'egress', g: Gen): string[] {
  const remote = dir === 'ingress' ? 'saddr' : 'daddr';
  return [['ip', 'icmp', '4', 'ipv4'], ['ip6', 'icmpv6', '6', 'ipv6']].flatMap(([ip, icmp, v, name]) => [
    `${ip} ${remote} . meta l4proto . th dport @sg-${dir}${v}-ports-${g} accept`,
    `${ip} ${remote} . ${icmp} type . ${icmp} code @sg-${dir}${v}-icmp-${g} accept`,
    `${ip} ${remote} . meta l4proto @sg-${dir}${v}-protos-${g} accept`,
    `ether type ${ip} counter drop comment "sg-${dir}-${name}"`,
  ]);
}

/** What the table holds now: absent, or the generation its rules reference (`null`: no rule references a set). */
export type LiveState = { table: false } | { table: true; gen: Gen | null };

/** The generation the rules in nft's text listing of the table reference, `null` when none does. */
export function liveGeneration(listing: string): Gen | null {
  const m = /@macs-([ab])\b/.exec(listing);
  return m ? (m[1] as Gen) : null;
}

function fill(t: string, sets: SetDef[], g: Gen, out: string[]): void {
  for (const s of sets) {
    // add, delete, add: a set of that name left by an interrupted replace goes (nothing references it), a new one stays.
    out.push(`add set ${t} ${s.name}-${g} { ${s.decl} }`, `delete set ${t} ${s.name}-${g}`, `add set ${t} ${s.name}-${g} { ${s.decl} }`);
    if (s.elements.length > 0) out.push(`add element ${t} ${s.name}-${g} { ${s.elements.join(', ')} }`);
  }
}

function rules(t: string, p: CompiledPolicy, g: Gen, out: string[]): void {
  const sg = p.rules !== null;
  for (const r of fromGuestRules(sg, g)) out.push(`add rule ${t} from-guest ${r}`);
  for (const r of toGuestRules(sg, g)) out.push(`add rule ${t} to-guest ${r}`);
}

/**
 * Where the guest's frames pass the device: on a macvtap (and a macvlan) the guest is above the device, so what it
 * sends is transmitted (`egress`) and what reaches it is received (`ingress`); on a tap or a veth end the guest is
 * across the device, so what it sends arrives at the device's `ingress` and what goes to it leaves through `egress`.
 */
export type GuestHooks = { fromGuest: 'egress'; toGuest: 'ingress' } | { fromGuest: 'ingress'; toGuest: 'egress' };

/** {@link GuestHooks} for a device of `kind` (`IFLA_INFO_KIND`; `tun` for a tap). */
export function guestHooks(kind: string | null): GuestHooks {
  return kind === 'macvtap' || kind === 'macvlan' ? { fromGuest: 'egress', toGuest: 'ingress' } : { fromGuest: 'ingress', toGuest: 'egress' };
}

/**
 * The transactions that make `device`'s table hold exactly `p`, to be run in order (each one all or nothing).
 * A fresh table (none yet, one left by an earlier device of that name: `recreate`, or one whose rules reference no
 * set) is one transaction that makes everything; replacing a live ruleset is two (see the file's comment).
 */
export function applyCommands(device: string, ifindex: number, owner: string, p: CompiledPolicy, live: LiveState, recreate: boolean, hooks: GuestHooks = guestHooks('macvtap')): string[] {
  const t = `netdev ${tableName(device)}`;
  const comment = tableComment(ifindex, owner);
  const sets = setDefs(p);
  if (!live.table || live.gen === null || recreate) {
    const out: string[] = [`add table ${t} { comment "${comment}"; }`];
    if (live.table) out.push(`delete table ${t}`, `add table ${t} { comment "${comment}"; }`);
    for (const [chain, hook] of [['from-guest', hooks.fromGuest], ['to-guest', hooks.toGuest]]) {
      out.push(`add chain ${t} ${chain} { type filter hook ${hook} device "${device}" priority 0; policy accept; comment "${comment}"; }`);
    }
    fill(t, sets, 'a', out);
    rules(t, p, 'a', out);
    return [out.join('\n') + '\n'];
  }
  const next: Gen = live.gen === 'a' ? 'b' : 'a';
  const first: string[] = [];
  fill(t, sets, next, first);
  const second: string[] = [`flush chain ${t} from-guest`, `flush chain ${t} to-guest`];
  rules(t, p, next, second);
  for (const s of sets) second.push(`delete set ${t} ${s.name}-${live.gen}`);
  return [first.join('\n') + '\n', second.join('\n') + '\n'];
}
