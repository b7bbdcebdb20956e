/**
 * Small, dependency-free statistics for benchmark repetitions: quantiles, a distribution-free confidence interval for
 * the median (order statistics), and ratios taken per repetition pair.
 *
 * Repetition counts are small (3–10), so nothing here assumes normality, and every interval reports the confidence it
 * really reaches: with 3 repetitions the widest order-statistic interval, [min, max], covers the median with only 75%.
 */

/** Sorted copy (ascending); NaN is rejected because it would silently poison every order statistic. */
export function sorted(xs: readonly number[]): number[] {
  for (const x of xs) if (Number.isNaN(x)) throw new RangeError('statistics over NaN');
  return [...xs].sort((a, b) => a - b);
}

/**
 * The `q`-quantile (0 ≤ q ≤ 1) with linear interpolation between order statistics (Hyndman–Fan type 7, what NumPy
 * and R use by default). Throws on an empty sample.
 */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) throw new RangeError('quantile of an empty sample');
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile q must be in [0, 1], got ${q}`);
  const s = sorted(xs);
  const h = (s.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return s[lo]! + (h - lo) * (s[hi]! - s[lo]!);
}

/**
 * The `q`-quantile as the ⌈q·n⌉-th smallest value (nearest rank: always a value of the sample, as ping's own summaries
 * are, and as {@link bucketQuantile} reads a histogram). Throws on an empty sample.
 */
export function nearestRank(xs: readonly number[], q: number): number {
  if (xs.length === 0) throw new RangeError('quantile of an empty sample');
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile q must be in [0, 1], got ${q}`);
  const s = sorted(xs);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

/** The median (0.5-quantile). */
export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

/** Arithmetic mean. Throws on an empty sample. */
export function mean(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('mean of an empty sample');
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** P(X ≤ k) for X ~ Binomial(n, 1/2), computed in log space so n in the thousands does not overflow. */
function binomHalfCdf(n: number, k: number): number {
  if (k < 0) return 0;
  if (k >= n) return 1;
  let logC = 0; // log C(n, 0)
  let sum = 0;
  const logHalfN = n * Math.log(0.5);
  for (let i = 0; i <= k; i++) {
    if (i > 0) logC += Math.log(n - i + 1) - Math.log(i);
    sum += Math.exp(logC + logHalfN);
  }
  return Math.min(1, sum);
}

/** A confidence interval and the confidence it actually reaches. */
export interface Interval {
  lo: number;
  hi: number;
  /** Coverage probability reached (≥ the requested level unless the sample is too small to reach it). */
  level: number;
}

/**
 * Distribution-free confidence interval for the median: [x₍k₎, x₍n−k+1₎] with the largest k whose coverage
 * 1 − 2·P(B ≤ k−1), B ~ Binomial(n, ½), is still ≥ `level`. When even [min, max] falls short (n < 6 for 95%),
 * that is returned with its real, lower, coverage, rather than pretending.
 */
export function medianInterval(xs: readonly number[], level = 0.95): Interval {
  if (xs.length === 0) throw new RangeError('interval of an empty sample');
  const s = sorted(xs);
  const n = s.length;
  let best = 1;
  for (let k = 1; k <= Math.floor((n + 1) / 2); k++) {
    const coverage = 1 - 2 * binomHalfCdf(n, k - 1);
    if (coverage >= level) best = k;
    else break;
  }
  const coverage = n === 1 ? 0 : 1 - 2 * binomHalfCdf(n, best - 1);
  return { lo: s[best - 1]!, hi: s[n - best]!, level: coverage };
}

/** Everything the report prints about one set of repetitions. */
export interface Summary {
  n: number;
  median: number;
  mean: number;
  min: number;
  max: number;
  /** Order-statistic interval for the median (see {@link medianInterval}). */
  ci: Interval;
}

/** Summarises a sample (at least one value). */
export function summarize(xs: readonly number[], level = 0.95): Summary {
  const s = sorted(xs);
  return { n: s.length, median: median(s), mean: mean(s), min: s[0]!, max: s[s.length - 1]!, ci: medianInterval(s, level) };
}

/**
 * Ratios `a[i] / b[i]` of paired repetitions (the same repetition index ran both configurations back to back), so
 * drift over the run cancels in each pair instead of inflating the spread. Pairs with a non-positive denominator are
 * dropped (a subtraction of process start-up can leave ~0 for tiny batches).
 */
export function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  if (a.length !== b.length) throw new RangeError(`paired ratios need equal lengths (${a.length} vs ${b.length})`);
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (b[i]! > 0) out.push(a[i]! / b[i]!);
  return out;
}

/**
 * {@link pairedRatios} of two series keyed by repetition index, over the repetitions both have (in repetition order):
 * how every benchmark pairs a configuration with its reference.
 */
export function pairedByRep(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>): number[] {
  const reps = [...a.keys()].filter((k) => b.has(k)).sort((x, y) => x - y);
  return pairedRatios(reps.map((k) => a.get(k)!), reps.map((k) => b.get(k)!));
}

/** p50/p90/p99/max of per-operation samples, for rows that time each operation. */
export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** {@link Percentiles} of a non-empty sample. */
export function percentiles(xs: readonly number[]): Percentiles {
  const s = sorted(xs);
  return { p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), max: s[s.length - 1]! };
}

/** A histogram as its non-empty buckets: `[upperBound, count]`, bounds ascending (HdrHistogram-style export). */
export type Buckets = readonly (readonly [number, number])[];

/**
 * Adds histograms bucket by bucket (same bucket boundaries: they come from the same native histogram layout). This is
 * how repetitions of a latency measurement are combined: percentiles of the merged histogram, never averages of
 * per-repetition percentiles (which have no meaning as a distribution).
 */
export function mergeBuckets(lists: readonly Buckets[]): [number, number][] {
  const acc = new Map<number, number>();
  for (const list of lists) {
    for (const [ub, count] of list) {
      if (!(count >= 0) || !Number.isFinite(ub)) throw new RangeError(`bad histogram bucket [${ub}, ${count}]`);
      acc.set(ub, (acc.get(ub) ?? 0) + count);
    }
  }
  return [...acc.entries()].filter(([, c]) => c > 0).sort((a, b) => a[0] - b[0]);
}

/**
 * The `q`-quantile of a bucketed histogram: the upper bound of the bucket holding the ⌈q·n⌉-th smallest value
 * (HdrHistogram's `valueAtPercentile`; the bucket layout bounds the relative error), clamped to `max` when given so
 * the top quantile never exceeds the largest value really seen.
 */
export function bucketQuantile(buckets: Buckets, q: number, max?: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile q must be in [0, 1], got ${q}`);
  let n = 0;
  for (const [, c] of buckets) n += c;
  if (n === 0) throw new RangeError('quantile of an empty histogram');
  const rank = Math.max(1, Math.ceil(q * n));
  let seen = 0;
  for (const [ub, c] of buckets) {
    seen += c;
    if (seen >= rank) return max === undefined ? ub : Math.min(ub, max);
  }
  const last = buckets[buckets.length - 1]![0];
  return max === undefined ? last : Math.min(last, max);
}

/** Count of values in a bucketed histogram. */
export function bucketCount(buckets: Buckets): number {
  let n = 0;
  for (const [, c] of buckets) n += c;
  return n;
}
