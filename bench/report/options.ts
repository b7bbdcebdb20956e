/**
 * What the `bench` subcommands (datapath, control, security, guest) share on their command line and around their
 * run: option parsing that turns every mistake into a {@link BenchUsageError} (printed with the usage, exit status
 * 2), the `--json FILE`, `--html FILE` and `--quiet` every one of them takes, and {@link runSubcommand}, the one
 * main: usage, root check, progress on stderr, the reports written, the text on stdout, the exit status.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseIntegerArg } from 'macvtap/internal';
import { stderrProgress, type Progress } from './progress.js';

/** A command-line mistake: printed with the subcommand's usage, exit status 2. */
export class BenchUsageError extends Error {}

/** The options every subcommand takes: where to write the JSON and HTML reports, and no progress on stderr. */
export const OUTPUT_OPTIONS = {
  json: { type: 'string' },
  html: { type: 'string' },
  quiet: { type: 'boolean' },
} as const;

/** What {@link OUTPUT_OPTIONS} asked for. */
export interface OutputArgs {
  json: string | undefined;
  html: string | undefined;
  quiet: boolean;
}

/** The usage lines of {@link OUTPUT_OPTIONS}, aligned at column `pad`; `schema` says what the JSON's schema is. */
export function outputUsage(schema?: string, pad = 27): string {
  return [
    `${'  --json FILE'.padEnd(pad)}write the full report as JSON${schema ? ` (schema ${schema})` : ''}`,
    `${'  --html FILE'.padEnd(pad)}write a self-contained HTML report with charts (vega-lite, rendered to SVG)`,
    `${'  --quiet'.padEnd(pad)}no progress on stderr`,
  ].join('\n');
}

/**
 * `parseArgs` in strict mode, no positionals, with {@link OUTPUT_OPTIONS} added to `options`; its own errors become
 * {@link BenchUsageError}s. Returns the values and the {@link OutputArgs}.
 */
export function parseBenchArgs<O extends NonNullable<ParseArgsConfig['options']>>(
  args: string[], options: O,
): { values: ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: false; strict: true; options: O & typeof OUTPUT_OPTIONS }>>['values']; output: OutputArgs } {
  let values;
  try {
    ({ values } = parseArgs({ args, allowPositionals: false, strict: true, options: { ...options, ...OUTPUT_OPTIONS } }));
  } catch (e) {
    throw new BenchUsageError((e as Error).message);
  }
  const v = values as { json?: string; html?: string; quiet?: boolean };
  return { values, output: { json: v.json, html: v.html, quiet: v.quiet === true } };
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

/** One `macvtap bench` subcommand, as {@link runSubcommand} runs it. */
export interface Subcommand<A extends { output: OutputArgs }, R> {
  /** How messages start: `macvtap bench control`. */
  name: string;
  /** Printed with `--help`, and after a usage error. */
  usage: string;
  /** Why it needs root (`it creates …`), or null when it does not. */
  needsRoot: string | null;
  /** Parses the arguments; throws {@link BenchUsageError} for a mistake. */
  parse(args: string[]): A;
  /** The measurement, as a report; `command` is the command line as typed, recorded in the report. */
  run(args: A, progress: Progress, command: string): Promise<R>;
  /** The report as text, for stdout. */
  text(report: R): string;
  /** The report as a self-contained HTML page (loaded only when asked: vega and vega-lite are large). */
  html(report: R): Promise<string>;
}

/**
 * A subcommand's main: `--help`, parsing (a mistake: the message and the usage on stderr, status 2), the root check
 * (status 1), the run with progress on stderr, the `--json`/`--html` files, the text on stdout (status 0); a failed
 * run prints its stack on stderr, status 1.
 */
export async function runSubcommand<A extends { output: OutputArgs }, R>(cmd: Subcommand<A, R>, args: string[], command: string): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(cmd.usage);
    return 0;
  }
  let parsed: A;
  try {
    parsed = cmd.parse(args);
  } catch (e) {
    if (e instanceof BenchUsageError) {
      process.stderr.write(`${cmd.name}: ${e.message}\n\n${cmd.usage}`);
      return 2;
    }
    throw e;
  }
  if (cmd.needsRoot && typeof process.getuid === 'function' && process.getuid() !== 0) {
    process.stderr.write(`${cmd.name}: needs root (${cmd.needsRoot})\n`);
    return 1;
  }
  const { json, html, quiet } = parsed.output;
  const progress = stderrProgress(quiet);
  try {
    const report = await cmd.run(parsed, progress, command);
    await writeReports(report, json, html, (r) => cmd.html(r), progress.log);
    process.stdout.write(cmd.text(report));
    return 0;
  } catch (e) {
    progress.end();
    process.stderr.write(`${cmd.name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  }
}
