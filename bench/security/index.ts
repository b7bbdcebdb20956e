/**
 * `macvtap bench security`: the anti-spoofing conformance probe (issue 5) — options, the report object (validated
 * against its schema before it is written), progress on stderr, the matrix on stdout, `--json` and `--html` files.
 */
import { cpus, release } from 'node:os';
import { stderrProgress } from '../report/progress.js';
import { OVS_INSTALL_HINT } from '../testbed/ovs.js';
import { BenchUsageError, intOption, listOption, parseBenchArgs, writeReports } from '../report/options.js';
import { runSecurityProbe, SECURITY_DEFAULTS } from './run.js';
import { formatSecurityReport } from './report.js';
import { ATTACHMENTS, SECURITY_SCHEMA_ID, SecurityReportSchema, type SecurityMatrix, type SecurityOptions, type SecurityReport } from './schema.js';

/** Usage text of `macvtap bench security`. */
export const SECURITY_USAGE = `Usage: macvtap bench security [options]

Anti-spoofing conformance probe: per attachment (${ATTACHMENTS.join(', ')}), guest A writes frames to its
tap fd with a forged source MAC, a forged source IP, another guest's MAC, to a second guest B, and the peer sends
frames for B and for nobody past A (before and after A's device goes promiscuous). Prints which frames reach their
target and which replies come back to A. Namespaces mvt-bench-<pid>-<n> and a private Open vSwitch, all removed
afterwards. Needs root. The datapath benchmark ('macvtap bench') runs it too and embeds the matrix.

  --attachments A,B,…      subset of ${ATTACHMENTS.join(',')}
  --attempts N             frames per case, distinct markers (default ${SECURITY_DEFAULTS.attempts}); dropped = none arrived
  --wait-ms N              how long to wait for a frame that does not come (default ${SECURITY_DEFAULTS.waitMs})
  --json FILE              write the report (schema ${SECURITY_SCHEMA_ID})
  --html FILE              write a self-contained HTML page with the matrix (vega-lite, rendered to SVG)
  --quiet                  no progress on stderr

Open vSwitch: ${OVS_INSTALL_HINT}.
`;

/** Parses `security`'s options. */
export function parseSecurityArgs(args: string[]): { opts: SecurityOptions; json: string | undefined; html: string | undefined; quiet: boolean } {
  const v = parseBenchArgs(args, {
    'attachments': { type: 'string' },
    'attempts': { type: 'string' },
    'wait-ms': { type: 'string' },
    'json': { type: 'string' },
    'html': { type: 'string' },
    'quiet': { type: 'boolean' },
  }).values;
  const opts: SecurityOptions = {
    attachments: listOption('attachments', v.attachments, ATTACHMENTS, SECURITY_DEFAULTS.attachments),
    attempts: intOption('attempts', v.attempts, SECURITY_DEFAULTS.attempts, 1, 20),
    waitMs: intOption('wait-ms', v['wait-ms'], SECURITY_DEFAULTS.waitMs, 10, 10_000),
  };
  return { opts, json: v.json, html: v.html, quiet: v.quiet === true };
}

/** The standalone report from a finished probe, validated against its schema. */
export function buildSecurityReport(m: SecurityMatrix, command: string): SecurityReport {
  const list = cpus();
  const report: SecurityReport = {
    schema: SECURITY_SCHEMA_ID,
    command,
    argv: [...process.argv],
    host: { kernel: `Linux ${release()}`, cpu: list[0]?.model.trim() ?? 'unknown', vcpus: Math.max(1, list.length), node: process.version },
    ...m,
  };
  return SecurityReportSchema.parse(report) as SecurityReport;
}

/** `macvtap bench security [options]`. Returns the exit status: 0 done, 1 the run failed, 2 usage error. */
export async function securityMain(args: string[], command: string): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(SECURITY_USAGE);
    return 0;
  }
  let parsed;
  try {
    parsed = parseSecurityArgs(args);
  } catch (e) {
    if (e instanceof BenchUsageError) {
      process.stderr.write(`macvtap bench security: ${e.message}\n\n${SECURITY_USAGE}`);
      return 2;
    }
    throw e;
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    process.stderr.write('macvtap bench security: needs root (it creates network namespaces, links and an Open vSwitch)\n');
    return 1;
  }
  const { opts, json, html, quiet } = parsed;
  const progress = stderrProgress(quiet);
  try {
    const report = buildSecurityReport(await runSecurityProbe(opts, progress), command);
    await writeReports(report, json, html, async (r) => (await import('./html.js')).renderSecurityHtml(r), progress.log);
    process.stdout.write(formatSecurityReport(report));
    return 0;
  } catch (e) {
    progress.end();
    process.stderr.write(`macvtap bench security: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  }
}
