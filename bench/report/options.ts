/**
 * What the `bench` subcommands (datapath, control, security) share on their command line and at their end: option
 * parsing that turns every mistake into a {@link BenchUsageError} (printed with the usage, exit status 2), and
 * writing the JSON and HTML reports.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseIntegerArg } from 'macvtap/internal';

/** A command-line mistake: printed with the subcommand's usage, exit status 2. */
export class BenchUsageError extends Error {}

/** `parseArgs` in strict mode, no positionals; its own errors become {@link BenchUsageError}s. */
export function parseBenchArgs<O extends NonNullable<ParseArgsConfig['options']>>(
  args: string[], options: O,
): ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: false; strict: true; options: O }>> {
  try {
    return parseArgs({ args, allowPositionals: false, strict: true, options });
  } catch (e) {
    throw new BenchUsageError((e as Error).message);
  }
}

/** How a usage error names the integers an option takes. */
function integers(min: number, max: number): string {
  if (max === Number.MAX_SAFE_INTEGER) return min === 1 ? 'a positive integer' : min === 0 ? 'a non-negative integer' : `an integer ≥ ${min}`;
  return `an integer ${min}–${max}`;
}

/** An integer option in [min, max] (decimal digits only); `fallback` when absent. */
export function intOption(name: string, v: string | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return fallback;
  const x = parseIntegerArg(v, min, max);
  if (x === null) throw new BenchUsageError(`--${name} takes ${integers(min, max)}, got ${JSON.stringify(v)}`);
  return x;
}

/** An option that takes `undefined` when absent, else an integer in [min, max]. */
export function optionalIntOption(name: string, v: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  return v === undefined ? undefined : intOption(name, v, 0, min, max);
}

/** A comma-separated list of integers in [min, max]; `fallback` when absent. */
export function intListOption(name: string, v: string | undefined, fallback: number[], min: number, max: number): number[] {
  if (v === undefined) return fallback;
  const parts = v.split(',').map((x) => x.trim()).filter(Boolean);
  const out = parts.map((x) => parseIntegerArg(x, min, max));
  if (out.length === 0 || out.some((x) => x === null)) {
    throw new BenchUsageError(`--${name} takes comma-separated integers ${min}–${max}, got ${JSON.stringify(v)}`);
  }
  return out as number[];
}

/** A comma-separated subset of `allowed`, kept in `allowed`'s order; `fallback` when absent. */
export function listOption<T extends string>(name: string, v: string | undefined, allowed: readonly T[], fallback: T[]): T[] {
  if (v === undefined) return fallback;
  const want = v.split(',').map((x) => x.trim()).filter(Boolean);
  const bad = want.filter((x) => !(allowed as readonly string[]).includes(x));
  if (bad.length || want.length === 0) throw new BenchUsageError(`--${name} takes a subset of ${allowed.join(',')}, got ${JSON.stringify(v)}`);
  return allowed.filter((x) => want.includes(x));
}

/** Writes the report as JSON and, with `html`, as the page `render` makes of it; says where on `log`. */
export async function writeReports<R>(
  report: R, json: string | undefined, html: string | undefined, render: (r: R) => Promise<string>, log: (line: string) => void,
): Promise<void> {
  if (json) {
    writeFileSync(resolve(json), JSON.stringify(report, null, 2) + '\n');
    log(`wrote ${resolve(json)}`);
  }
  if (html) {
    writeFileSync(resolve(html), await render(report));
    log(`wrote ${resolve(html)}`);
  }
}
