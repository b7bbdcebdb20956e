/**
 * The harness's entry: `macvtap-bench …` (bin `cli.js`) and `macvtap bench …` (the library's CLI imports this package
 * lazily, when it is installed).
 *
 * `bench [options]` runs the datapath benchmark (datapath/), the main job; `bench --compare a.json b.json` prints the
 * change between two runs of either benchmark; `bench security` runs the anti-spoofing probe (security/); `bench
 * control` the control-plane benchmark (control/); `bench guest` the TCG guest row (guest/).
 */
import { compareReports } from './report/compare.js';
import { CONTROL_USAGE } from './control/index.js';
import { DATAPATH_USAGE, datapathMain } from './datapath/index.js';

/**
 * `macvtap bench …`. Returns the process exit status: 0 done, 1 the run failed, 2 usage error.
 * `argv` is what follows `bench` on the command line (e.g. `['control', '--quick']`).
 */
export async function benchMain(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'help' || sub === '--help' || sub === '-h' || (sub !== 'control' && sub !== 'security' && argv.includes('--help'))) {
    process.stdout.write(`${DATAPATH_USAGE}\n${CONTROL_USAGE}`);
    return 0;
  }
  if (sub === 'control' && rest.includes('--help')) {
    process.stdout.write(CONTROL_USAGE);
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
  if (sub === undefined || sub.startsWith('-') || sub === 'datapath') {
    return datapathMain(sub === 'datapath' ? rest : argv, ['macvtap', 'bench', ...argv].join(' '));
  }
  if (sub === 'security') {
    // The anti-spoofing probe; loaded only when asked, like the guest benchmark.
    const { securityMain } = await import('./security/index.js');
    return securityMain(rest, ['macvtap', 'bench', ...argv].join(' '));
  }
  if (sub === 'guest') {
    // Loaded only when asked: it builds a guest from Debian packages and needs QEMU.
    const { guestMain } = await import('./guest/index.js');
    return guestMain(rest);
  }
  if (sub === 'control') {
    const { controlMain } = await import('./control/index.js');
    return controlMain(rest, ['macvtap', 'bench', ...argv].join(' '));
  }
  process.stderr.write(`macvtap bench: unknown benchmark ${JSON.stringify(sub)}\n\n${DATAPATH_USAGE}`);
  return 2;
}
