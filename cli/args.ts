/** Shared argument helpers of the CLI commands. */
import { netnsPath } from '../lib/index.js';
import { parseDecimal } from '../lib/validate.js';

/** `--netns` takes a name made by `ip netns add` or a path. */
export function netnsArg(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  return v.startsWith('/') ? v : netnsPath(v);
}

/** A link given on the command line: digits are an ifindex. */
export function linkArg(v: string): string | number {
  return parseDecimal(v) ?? v;
}

/** An integer flag, or a usage error naming it. */
export function intArg(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = parseDecimal(v);
  if (n === undefined) throw new UsageError(`--${name} takes a non-negative integer, not ${JSON.stringify(v)}`);
  return n;
}

/** A mistake on the command line: printed with the usage text, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Prints rows as an aligned text table. */
export function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  process.stdout.write(line(headers) + '\n');
  for (const r of rows) process.stdout.write(line(r) + '\n');
}
