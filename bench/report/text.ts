/** Plain-text output shared by every benchmark's printed report: numbers, aligned tables, the targets. */
import type { Target } from './schema.js';

/** Three significant-ish digits, no exponent. */
export function num(x: number): string {
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/** Text table with a header rule; columns in `rightAlign` are right-aligned. */
export function table(header: string[], body: string[][], rightAlign: Set<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (rightAlign.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** The targets a run is judged by, as a table under the heading `Targets`. */
export function targetsTable(targets: readonly Target[]): string {
  const verdict = (t: Target): string => (t.met === null ? 'n/a' : t.met ? 'met' : 'NOT MET');
  return ['Targets', table(['', 'target', 'measured', ''], targets.map((t) => [t.name, t.target, t.value, verdict(t)]), new Set())].join('\n');
}
