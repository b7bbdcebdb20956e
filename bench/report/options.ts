/**
 * What the `bench` subcommands (datapath, control, security) share on their command line and at their end: option
 * parsing that turns every mistake into a {@link BenchUsageError} (printed with the usage, exit status 2), and
 * writing the JSON and HTML reports.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';

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

/** An integer option in [min, max]; `fallback` when absent. */
export function intOption(name: string, v: string | undefined, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback;
  const x = Number(v);
  if (!Number.isInteger(x) || x < min || x > max) throw new BenchUsageError(`--${name} takes an integer ${min}–${max}, got ${JSON.stringify(v)}`);
  return x;
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
