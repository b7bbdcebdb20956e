/**
 * `macvtap bench security`: the anti-spoofing conformance probe — options, the report object (validated against its
 * schema before it is written), progress on stderr, the matrix on stdout, `--json` and `--html` files.
 */
import { OVS_INSTALL_HINT } from '../testbed/ovs.js';
import { intOption, listOption, outputUsage, parseBenchArgs, runSubcommand, type OutputArgs } from '../report/options.js';
import { hostFacts } from '../report/schema.js';
import { runSecurityProbe, SECURITY_DEFAULTS } from './run.js';
import { formatSecurityReport } from './report.js';
import { ATTACHMENTS, SECURITY_SCHEMA_ID, SecurityReportSchema, type SecurityMatrix, type SecurityOptions, type SecurityReport } from './schema.js';

/** Usage text of `macvtap bench security`. */
export const SECURITY_USAGE = `Usage: macvtap bench security [options]

Anti-spoofing conformance probe: per attachment (${ATTACHMENTS.join(', ')}), guest A writes frames to its
tap fd with its own addresses, a forged source MAC, a forged source IPv4/IPv6, another guest's MAC, to a second
guest B, gratuitous ARP and neighbour advertisements with forged addresses and a router advertisement, and the peer
sends frames for B and for nobody past A (before and after A's device goes promiscuous). Prints which frames reach
their target and which replies come back to A. The +portsec rows apply the library's port security (nftables,
needs libnftables1) to both guests. Namespaces mvt-bench-<pid>-<n> and a private Open vSwitch, all removed
afterwards. Needs root. The datapath benchmark ('macvtap bench') runs it too and embeds the matrix.

  --attachments A,B,…      subset of ${ATTACHMENTS.join(',')}
  --attempts N             frames per case, distinct markers (default ${SECURITY_DEFAULTS.attempts}); dropped = none arrived
  --wait-ms N              how long to wait for a frame that does not come (default ${SECURITY_DEFAULTS.waitMs})
${outputUsage(SECURITY_SCHEMA_ID, 27)}

Open vSwitch: ${OVS_INSTALL_HINT}.
`;

/** Parses `security`'s options. */
export function parseSecurityArgs(args: string[]): { opts: SecurityOptions; output: OutputArgs } {
  const { values: v, output } = parseBenchArgs(args, {
    'attachments': { type: 'string' },
    'attempts': { type: 'string' },
    'wait-ms': { type: 'string' },
  });
  const opts: SecurityOptions = {
    attachments: listOption('attachments', v.attachments, ATTACHMENTS, SECURITY_DEFAULTS.attachments),
    attempts: intOption('attempts', v.attempts, SECURITY_DEFAULTS.attempts, 1, 20),
    waitMs: intOption('wait-ms', v['wait-ms'], SECURITY_DEFAULTS.waitMs, 10, 10_000),
  };
  return { opts, output };
}

/** The standalone report from a finished probe, validated against its schema. */
export function buildSecurityReport(m: SecurityMatrix, command: string): SecurityReport {
  const report: SecurityReport = {
    schema: SECURITY_SCHEMA_ID,
    command,
    argv: [...process.argv],
    host: hostFacts(),
    ...m,
  };
  return SecurityReportSchema.parse(report) as SecurityReport;
}

/** `macvtap bench security [options]`. Returns the exit status: 0 done, 1 the run failed, 2 usage error. */
export function securityMain(args: string[], command: string): Promise<number> {
  return runSubcommand({
    name: 'macvtap bench security',
    usage: SECURITY_USAGE,
    needsRoot: 'it creates network namespaces, links and an Open vSwitch',
    parse: parseSecurityArgs,
    run: async ({ opts }, progress, cmd) => buildSecurityReport(await runSecurityProbe(opts, progress), cmd),
    text: formatSecurityReport,
    html: async (r) => (await import('./html.js')).renderSecurityHtml(r),
  }, args, command);
}
