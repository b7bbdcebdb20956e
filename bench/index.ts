/**
 * The harness's entry: `macvtap-bench …` (bin `cli.js`) and `macvtap bench …` (the library's CLI imports this package
 * lazily, when it is installed).
 *
 * `bench [options]` runs the datapath benchmark (datapath/), the main job; `bench --compare a.json b.json` prints the
 * change between two runs of either benchmark; `bench security` runs the anti-spoofing probe (security/); `bench
 * control` the control-plane benchmark (control/); `bench guest` the TCG guest row (guest/). Each subcommand answers
 * its own `--help`.
 */
import { compareReports } from './report/compare.js';
import { CONTROL_USAGE } from './control/index.js';
import { DATAPATH_USAGE, datapathMain } from './datapath/index.js';

/** The subcommands other than the default one, each loaded only when asked (guest, for one, needs QEMU). */
const SUBCOMMANDS: Record<string, () => Promise<(args: string[], command: string) => Promise<number>>> = {
  control: async () => (await import('./control/index.js')).controlMain,
  security: async () => (await import('./security/index.js')).securityMain,
  guest: async () => (await import('./guest/index.js')).guestMain,
};

/**
 * `macvtap bench …`. Returns the process exit status: 0 done, 1 the run failed, 2 usage error.
 * `argv` is what follows `bench` on the command line (e.g. `['control', '--quick']`).
 */
export async function benchMain(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const command = ['macvtap', 'bench', ...argv].join(' ');
  if (sub === 'help' || sub === '--help' || sub === '-h') {
    process.stdout.write(`${DATAPATH_USAGE}\n${CONTROL_USAGE}`);
    return 0;
  }
  if (sub === '--compare') {
    if (rest.length !== 2) {
      process.stderr.write(`macvtap bench --compare takes two report files (a.json b.json)\n\n${DATAPATH_USAGE}`);
      return 2;
    }
    try {
      process.stdout.write(compareReports(rest[0]!, rest[1]!));
      return 0;
    } catch (e) {
      process.stderr.write(`macvtap bench --compare: ${e instanceof Error ? e.message : String(e)}\n`);
      return 1;
    }
  }
  // No subcommand (or only options): the datapath benchmark, the default. `datapath` is accepted as its name too.
  if (sub === undefined || sub.startsWith('-') || sub === 'datapath') return datapathMain(sub === 'datapath' ? rest : argv, command);
  if (Object.hasOwn(SUBCOMMANDS, sub)) return (await SUBCOMMANDS[sub]!())(rest, command);
  process.stderr.write(`macvtap bench: unknown benchmark ${JSON.stringify(sub)}\n\n${DATAPATH_USAGE}`);
  return 2;
}
