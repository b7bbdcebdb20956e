/**
 * `macvtap bench guest [--boots N] [--pings N] [--json FILE]`: the "TCG guest" row — boot-to-first-ping and ping RTT
 * of the same tiny real guest (QEMU TCG) on a macvtap and on a tap in a Linux bridge. Printed as its own table and kept
 * apart from the datapath tables on purpose: software-emulated guest numbers must never be read as KVM performance.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BenchUsageError, optionalIntOption } from '../report/options.js';
import { formatGuestReport } from './report.js';
import { measureTcgGuest } from './run.js';
import { TCG_GUEST_LABEL } from './schema.js';

export const GUEST_USAGE = `Usage: macvtap bench guest [--boots N] [--pings N] [--json FILE]
  Boots the same tiny Debian guest under QEMU TCG N times on each path (macvtap, tap+Linux bridge), alternating, and
  reports boot-to-first-ping and peer→guest ping RTT. Needs qemu-system-x86 and network access to Debian's archive the
  first time (the guest is built from Debian packages and cached in .cache/). Labelled "${TCG_GUEST_LABEL}": emulated,
  not KVM performance.
`;

/** Runs the guest benchmark from command-line arguments; returns the exit status. */
export async function guestMain(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { boots: { type: 'string' }, pings: { type: 'string' }, json: { type: 'string' }, help: { type: 'boolean' } } }));
  } catch (e) {
    process.stderr.write(`macvtap bench guest: ${(e as Error).message}\n\n${GUEST_USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(GUEST_USAGE);
    return 0;
  }
  try {
    const boots = optionalIntOption('boots', values.boots, 1);
    const pings = optionalIntOption('pings', values.pings, 1);
    const result = await measureTcgGuest({
      ...(boots !== undefined && { boots }),
      ...(pings !== undefined && { pings }),
      onBoot: (path, i, b) => process.stderr.write(`bench guest: ${path} boot ${i + 1}: first ping after ${b.bootToFirstPingMs.toFixed(0)} ms\n`),
    });
    if (values.json) writeFileSync(resolve(values.json), JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(formatGuestReport(result));
    return 0;
  } catch (e) {
    process.stderr.write(`macvtap bench guest: ${e instanceof Error ? e.message : String(e)}\n`);
    return e instanceof BenchUsageError || e instanceof RangeError ? 2 : 1;
  }
}
