/**
 * Disjoint boxes for concatenated interval sets. The kernel's set for concatenations with intervals (`pipapo`) refuses
 * an element that partly overlaps another with `EEXIST`, while security group rules overlap all the time (a /8 for
 * TCP 22 and a /16 for every port). A rule list is a union of boxes (first range × second range); this rewrites the
 * union as boxes that do not overlap and cover exactly the same points, so the set accepts them and a lookup answers
 * the same as the rule list would.
 * @internal
 */
import type { Range } from './addr.js';

/** A box: `a` × `b`, both closed ranges. */
export interface Box { readonly a: Range; readonly b: Range }

/** Sorts and merges ranges that overlap or touch. */
export function mergeRanges(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const out: [bigint, bigint][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && lo <= last[1] + 1n) {
      if (hi > last[1]) last[1] = hi;
    } else {
      out.push([lo, hi]);
    }
  }
  return out;
}

function sameRanges(x: readonly Range[], y: readonly Range[]): boolean {
  return x.length === y.length && x.every((r, i) => r[0] === (y[i] as Range)[0] && r[1] === (y[i] as Range)[1]);
}

/**
 * The union of `boxes` as disjoint boxes: the `a` axis is cut at every box edge; in each slice the `b` ranges of the
 * boxes covering it are merged; neighbouring slices with the same `b` ranges are joined again. O(n² log n) for n
 * boxes, which for the few hundred rules a port carries is well under a millisecond.
 */
export function disjointBoxes(boxes: readonly Box[]): Box[] {
  if (boxes.length === 0) return [];
  const cuts = new Set<bigint>();
  for (const { a } of boxes) { cuts.add(a[0]); cuts.add(a[1] + 1n); }
  const edges = [...cuts].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const slices: { a: [bigint, bigint]; b: Range[] }[] = [];
  for (let i = 0; i + 1 < edges.length; i++) {
    const lo = edges[i] as bigint;
    const hi = (edges[i + 1] as bigint) - 1n;
    const b = mergeRanges(boxes.filter((x) => x.a[0] <= lo && lo <= x.a[1]).map((x) => x.b));
    if (b.length === 0) continue;
    const prev = slices[slices.length - 1];
    if (prev !== undefined && prev.a[1] + 1n === lo && sameRanges(prev.b, b)) prev.a[1] = hi;
    else slices.push({ a: [lo, hi], b });
  }
  return slices.flatMap((s) => s.b.map((b) => ({ a: [s.a[0], s.a[1]] as Range, b })));
}

/**
 * Splits a range of a packed key (`high << shift | low`) into boxes of (high range × low range) that cover the same
 * keys: a partial first `high`, the full ones between, a partial last. For keys such as protocol·port (`shift` 16) and
 * ICMP type·code (`shift` 8), whose two fields the set holds as two concatenated fields.
 */
export function splitPacked(r: Range, shift: number): Box[] {
  const s = BigInt(shift);
  const full = (1n << s) - 1n;
  const [lo, hi] = r;
  const hLo = lo >> s;
  const hHi = hi >> s;
  if (hLo === hHi) return [{ a: [hLo, hLo], b: [lo & full, hi & full] }];
  const out: Box[] = [];
  let firstFull = hLo;
  if ((lo & full) !== 0n) { out.push({ a: [hLo, hLo], b: [lo & full, full] }); firstFull = hLo + 1n; }
  let lastFull = hHi;
  const tailPartial = (hi & full) !== full;
  if (tailPartial) lastFull = hHi - 1n;
  if (firstFull <= lastFull) out.push({ a: [firstFull, lastFull], b: [0n, full] });
  if (tailPartial) out.push({ a: [hHi, hHi], b: [0n, hi & full] });
  return out;
}
