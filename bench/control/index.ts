/**
 * `macvtap bench control` (also `macvtap-bench control`): the control-plane benchmark ({@link runControl}): a table
 * on stdout, progress on stderr, and with `--json FILE` the full report (schema `macvtap-bench-control/1`, every raw
 * repetition kept), with `--html FILE` the same report as a self-contained page with charts.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { BenchUsageError, intListOption, intOption, listOption, outputUsage, parseBenchArgs, runSubcommand, type OutputArgs } from '../report/options.js';
import { hostFacts } from '../report/schema.js';
import { CONFIG_IDS, type ConfigId } from './driver.js';
import { formatControlReport } from './report.js';
import { CONTROL_DEFAULTS, CONTROL_QUICK, runControl, scalingWindow } from './run.js';
import { ControlReportSchema, CONTROL_SCHEMA_ID, type ControlOptions, type ControlReport } from './schema.js';
import { checkControlTargets, summarizeControl } from './summary.js';

/** Usage text of `macvtap bench control`. */
export const CONTROL_USAGE = `Usage: macvtap bench control [options]

Control-plane benchmark: this package vs 'ip' (one process per command) vs 'ip -batch' vs the npm 'netlink'
package, in one throwaway network namespace (mvt-bench-<pid>-<n>, removed afterwards). Needs root.

  --quick               one repetition of small sizes (under a minute)
  --reps N              repetitions, configurations interleaved within each, starting with the next one each time (default ${CONTROL_DEFAULTS.reps}; quick ${CONTROL_QUICK.reps})
  --sizes A,B,…         lifecycle device counts (default ${CONTROL_DEFAULTS.sizes.join(',')}; quick ${CONTROL_QUICK.sizes.join(',')})
  --scale A,B,…         scaling checkpoints, ascending (default ${CONTROL_DEFAULTS.scale.join(',')}; quick ${CONTROL_QUICK.scale.join(',')})
  --group-size N        devices removed by group in the teardown scenario (default ${CONTROL_DEFAULTS.groupSize})
  --calls N             getLink(lo) calls per repetition (default ${CONTROL_DEFAULTS.calls}; 'ip' per command: --ip-calls, ${CONTROL_DEFAULTS.ipCalls})
  --ip-calls N
  --delete-sample N     devices deleted one by one per lifecycle, the rest by group; 0 = all (default ${CONTROL_DEFAULTS.deleteSample})
  --configs A,B,…       subset of ${CONFIG_IDS.join(',')}
  --no-warmup           skip the untimed warm-up
${outputUsage(`${CONTROL_SCHEMA_ID}, every repetition`, 24)}

The datapath benchmark (macvtap vs tap+OVS vs tap+Linux bridge) is 'macvtap bench' without 'control'.
`;

const MAX_DEVICES = 8192;

/** Parses `control`'s options into the recorded option set (quick defaults first, explicit flags over them). */
export function parseControlArgs(args: string[]): { opts: ControlOptions; output: OutputArgs } {
  const { values: v, output } = parseBenchArgs(args, {
    'quick': { type: 'boolean' },
    'reps': { type: 'string' },
    'sizes': { type: 'string' },
    'scale': { type: 'string' },
    'group-size': { type: 'string' },
    'calls': { type: 'string' },
    'ip-calls': { type: 'string' },
    'delete-sample': { type: 'string' },
    'configs': { type: 'string' },
    'no-warmup': { type: 'boolean' },
  });
  const base = v.quick ? CONTROL_QUICK : CONTROL_DEFAULTS;
  const scale = intListOption('scale', v.scale, base.scale, 1, MAX_DEVICES);
  for (let i = 1; i < scale.length; i++) {
    if (scale[i]! <= scale[i - 1]!) throw new BenchUsageError(`--scale checkpoints must ascend, got ${scale.join(',')}`);
  }
  const configs: ConfigId[] = listOption('configs', v.configs, CONFIG_IDS, base.configs);
  const opts: ControlOptions = {
    quick: v.quick === true,
    reps: intOption('reps', v.reps, base.reps, 1, 100),
    sizes: intListOption('sizes', v.sizes, base.sizes, 1, MAX_DEVICES),
    scale,
    groupSize: intOption('group-size', v['group-size'], base.groupSize, 1, MAX_DEVICES),
    calls: intOption('calls', v.calls, base.calls, 1, 1_000_000),
    ipCalls: intOption('ip-calls', v['ip-calls'], base.ipCalls, 1, 100_000),
    deleteSample: intOption('delete-sample', v['delete-sample'], base.deleteSample, 0, MAX_DEVICES),
    parallelDepth: base.parallelDepth,
    configs,
    warmup: v['no-warmup'] !== true,
  };
  return { opts, output };
}

/** Host facts recorded in the report, with the versions of the tools compared. */
function hostInfo(): ControlReport['host'] {
  const ipv = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  let netlinkPackage: string | null = null;
  try {
    const require = createRequire(import.meta.url);
    netlinkPackage = (require('netlink/package.json') as { version: string }).version;
  } catch {
    // Not installed (it is a devDependency): the configuration reports itself unavailable.
  }
  return {
    ...hostFacts(),
    iproute2: (ipv.stdout || ipv.stderr || 'ip: not found').trim().replace(/^ip utility, /, ''),
    netlinkPackage,
  };
}

/** The notes printed under the tables and stored in the JSON: what each number includes. */
function notes(opts: ControlOptions): string[] {
  return [
    "Opening a queue (/dev/tapN, TUNSETIFF) and closing it are measured for this package only: 'ip' and the netlink " +
      'package cannot issue TUNSETIFF, so their lifecycle is create(+up) and delete. Closing a tap queue waits an ' +
      'RCU grace period in the kernel (tap_put_queue → synchronize_rcu), like a one-by-one delete.',
    'Deleting one device waits an RCU grace period in the kernel (≈16–23 ms here, the same for every tool). ' +
      (opts.deleteSample > 0
        ? `Above ${opts.deleteSample} devices only ${opts.deleteSample} are deleted one by one and the rest by group ` +
          '("rest by group" rows); --delete-sample 0 deletes all one by one.'
        : 'All devices are deleted one by one (--delete-sample 0).'),
    "A macvtap create is two requests (the create, then its owner tag: the kernel ignores IFLA_IFALIAS at create) " +
      "and returns the new link's full LinkInfo: the kernel's NLM_F_ECHO copy of it (a separate RTM_GETLINK on " +
      'kernels before 6.3), plus its tap char device from a per-namespace sysfs; the other configurations make one ' +
      'request and do not fetch the result. Lower device by ifindex for macvtap and netlink, by name for ip.',
    "'ip, 1 process/command' is timed from spawn to exit as seen from Node: fork/exec and ip's own namespace switch " +
      "(setns + private sysfs mount) are included, as a driver shelling out to ip pays them. 'ip -batch' is timed " +
      'inside its one process: a marker command (link show dev bp0) is written, its output awaited, then the phase and ' +
      'another marker; the fastest marker-only round trip (pipe wake-ups + one RTM_GETLINK) is subtracted.',
    'The netlink package runs in a helper process inside the namespace (its socket has no namespace option) and times ' +
      "its own calls; this package is called in-process with { netns }: each call is a Promise served on libuv's " +
      "thread pool (a hop that alone costs ≈40 µs on this VM, as fs.promises.stat does) with a pooled netlink socket " +
      'of that namespace (setns only when the pool has none).',
    `Scaling windows: the ${opts.scale.map((c, i) => `${scalingWindow(c, opts.scale[i - 1] ?? 0)} devices below ${c}`).join(', ')}; ` +
      "'ip' per command is not run there. The userspace estimate is (configuration − ip -batch) per device, paired by " +
      "repetition; this package's user CPU per create is measured (getrusage of its process: user time only, which " +
      'the kernel splits from the total by sampled ticks, so only windows of a few hundred creates are judged).',
    'Timings are wall clock on a shared 2-vCPU VM; other work on the machine shows up as spread.',
  ];
}

/** Builds the report object from a finished run (also used by tests to check the shape of a real run). */
export function buildControlReport(
  run: Awaited<ReturnType<typeof runControl>>,
  opts: ControlOptions,
  command: string,
): ControlReport {
  const report: ControlReport = {
    schema: CONTROL_SCHEMA_ID,
    host: hostInfo(),
    command,
    argv: [...process.argv],
    options: opts,
    namespace: run.namespace,
    startedAt: run.startedAt,
    durationS: run.durationS,
    unavailable: run.unavailable,
    notes: notes(opts),
    rows: run.rows,
    summary: summarizeControl(run.rows),
    targets: checkControlTargets(run.rows, opts),
  };
  // Fail loudly here rather than write a file that does not match its own schema.
  return ControlReportSchema.parse(report) as ControlReport;
}

/** `macvtap bench control ARGS`: 0 done, 1 the run failed, 2 usage error. `command` is recorded in the report. */
export function controlMain(args: string[], command: string): Promise<number> {
  return runSubcommand({
    name: 'macvtap bench control',
    usage: CONTROL_USAGE,
    needsRoot: 'it creates a network namespace and links in it',
    parse: parseControlArgs,
    run: async ({ opts }, progress, cmd) => buildControlReport(await runControl(opts, progress), opts, cmd),
    text: formatControlReport,
    html: async (r) => (await import('./html.js')).renderControlHtml(r),
  }, args, command);
}
