/**
 * Addresses as numbers: IPv4/IPv6 text (with an optional `/len`) to a closed range of `bigint`s, and back, for the
 * set elements of the port-security ruleset. Written here rather than taken from `node:net`, whose import would load
 * Node's streams with the package (see lib/loader.ts).
 * @internal
 */

/** A closed interval `[lo, hi]`. */
export type Range = readonly [bigint, bigint];

/** An address family's numbers. */
export interface Family { readonly bits: number; readonly v6: boolean }
export const V4: Family = { bits: 32, v6: false };
export const V6: Family = { bits: 128, v6: true };

function parseV4(s: string): bigint | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let n = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return null;
    n = (n << 8n) | BigInt(p);
  }
  return n;
}

function parseV6(s: string): bigint | null {
  if (!/^[0-9A-Fa-f:.]{2,45}$/.test(s)) return null;
  let tail4: bigint | null = null;
  let text = s;
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.')) {
    tail4 = parseV4(s.slice(lastColon + 1));
    if (tail4 === null) return null;
    text = s.slice(0, lastColon + 1) + '0:0';
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string): string[] | null => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0] as string);
  const rest = halves.length === 2 ? groups(halves[1] as string) : [];
  if (head === null || rest === null) return null;
  const missing = 8 - head.length - rest.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  let n = 0n;
  for (const g of all) {
    if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return null;
    n = (n << 16n) | BigInt(`0x${g}`);
  }
  if (tail4 !== null) n = (n & ~0xffff_ffffn) | tail4;
  return n;
}

/** The number of an address of `fam`, or `null` when `s` is not one. */
export function parseAddress(s: string, fam: Family): bigint | null {
  return fam.v6 ? parseV6(s) : parseV4(s);
}

/** Which family `s` (an address, or a prefix) belongs to, by its shape; `null` for neither. */
export function familyOf(s: string): Family | null {
  const addr = s.split('/')[0] as string;
  if (parseV4(addr) !== null) return V4;
  if (parseV6(addr) !== null) return V6;
  return null;
}

/**
 * `ADDR` or `ADDR/LEN` as the range of addresses it covers. Host bits set under the prefix are refused (as Neutron
 * refuses `10.0.0.1/24` as a CIDR): `null` with the reason.
 */
export function parsePrefix(s: string, fam: Family): { range: Range } | { error: string } {
  const slash = s.indexOf('/');
  const addr = parseAddress(slash < 0 ? s : s.slice(0, slash), fam);
  if (addr === null) return { error: `is not an ${fam.v6 ? 'IPv6' : 'IPv4'} address or prefix` };
  let len = fam.bits;
  if (slash >= 0) {
    const t = s.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(t) || Number(t) > fam.bits) return { error: `has a prefix length outside 0–${fam.bits}` };
    len = Number(t);
  }
  const host = (1n << BigInt(fam.bits - len)) - 1n;
  if ((addr & host) !== 0n) return { error: 'has host bits set below its prefix length' };
  return { range: [addr, addr | host] };
}

/** Text of an address number. */
export function formatAddress(n: bigint, fam: Family): string {
  if (!fam.v6) return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: the longest run (≥ 2) of zero groups becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** `lo-hi`, `ADDR/LEN` or `ADDR`, whichever names the range exactly. */
export function formatRange(r: Range, fam: Family): string {
  const [lo, hi] = r;
  if (lo === hi) return formatAddress(lo, fam);
  const size = hi - lo + 1n;
  if ((size & (size - 1n)) === 0n && (lo & (size - 1n)) === 0n) {
    return `${formatAddress(lo, fam)}/${fam.bits - (size.toString(2).length - 1)}`;
  }
  return `${formatAddress(lo, fam)}-${formatAddress(hi, fam)}`;
}

/** A MAC (`aa:bb:cc:dd:ee:ff`, validated elsewhere) as a 48-bit number, and back. */
export function macNumber(mac: string): bigint {
  return BigInt(`0x${mac.replaceAll(':', '')}`);
}
export function macText(n: bigint): string {
  return n.toString(16).padStart(12, '0').replace(/(..)(?!$)/g, '$1:');
}

/** The EUI-64 link-local address (`fe80::/64`) a host derives from `mac`, as Neutron allows it for every port MAC. */
export function linkLocalOf(mac: bigint): bigint {
  const hi = (mac >> 24n) ^ 0x020000n; // the universal/local bit flipped
  const lo = mac & 0xff_ffffn;
  const iid = (hi << 40n) | (0xfffen << 24n) | lo;
  return (0xfe80n << 112n) | iid;
}
