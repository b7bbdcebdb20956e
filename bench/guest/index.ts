/**
 * `macvtap bench guest`: the "TCG guest" row on its own — boot-to-first-ping and ping RTT of the same tiny real guest
 * (QEMU TCG) on a macvtap and on a tap in a Linux bridge. Printed as its own table and kept apart from the datapath
 * tables on purpose: software-emulated guest numbers must never be read as KVM performance.
 */
import { optionalIntOption, outputUsage, parseBenchArgs, runSubcommand, type OutputArgs } from '../report/options.js';
import { formatGuestReport } from './report.js';
import { measureTcgGuest } from './run.js';
import { TCG_GUEST_LABEL } from './schema.js';

/** Usage text of `macvtap bench guest`. */
export const GUEST_USAGE = `Usage: macvtap bench guest [options]

Boots the same tiny Debian guest under QEMU TCG N times on each path (macvtap, tap+Linux bridge), alternating, and
reports boot-to-first-ping and peer→guest ping RTT. Needs root, qemu-system-x86 and network access to Debian's
archive the first time (the guest is built from Debian packages and cached). Labelled "${TCG_GUEST_LABEL}": emulated,
not KVM performance.

  --boots N                boots per path (default 3)
  --pings N                pings per boot, each direction (default 20)
${outputUsage()}
`;

/** Parses `guest`'s options. */
export function parseGuestArgs(args: string[]): { boots: number | undefined; pings: number | undefined; output: OutputArgs } {
  const { values: v, output } = parseBenchArgs(args, { boots: { type: 'string' }, pings: { type: 'string' } });
  return { boots: optionalIntOption('boots', v.boots, 1), pings: optionalIntOption('pings', v.pings, 1), output };
}

/** `macvtap bench guest [options]`. Returns the exit status: 0 done, 1 the run failed, 2 usage error. */
export function guestMain(args: string[], command: string): Promise<number> {
  return runSubcommand({
    name: 'macvtap bench guest',
    usage: GUEST_USAGE,
    needsRoot: 'it creates network namespaces and links, and hands a macvtap to QEMU',
    parse: parseGuestArgs,
    run: ({ boots, pings }, progress) => measureTcgGuest({
      ...(boots !== undefined && { boots }),
      ...(pings !== undefined && { pings }),
      onBoot: (path, i, b) => progress.log(`guest: ${path} boot ${i + 1}: first ping after ${b.bootToFirstPingMs.toFixed(0)} ms`),
    }),
    text: formatGuestReport,
    html: async (r) => (await import('./html.js')).renderGuestHtml(r),
  }, args, command);
}
