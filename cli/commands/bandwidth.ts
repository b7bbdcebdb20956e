/**
 * `macvtap bandwidth DEV [--inbound AVG[,PEAK,BURST]] [--outbound …] [--clear] [--netns NS] [--json]`: a guest port's
 * bandwidth limits from the shell (the library's `setBandwidth`/`getBandwidth`), in libvirt's units: KB/s and KB.
 */
import { parseArgs } from 'node:util';
import { getBandwidth, setBandwidth, type Bandwidth, type BandwidthRate } from '../../lib/index.js';
import { linkArg, netnsArg, UsageError } from '../args.js';

/** `AVG[,PEAK[,BURST]]`, an empty field left out (`1000,,64`): the numbers are checked by the library. */
export function rateArg(flag: string, v: string): BandwidthRate {
  const parts = v.split(',');
  if (parts.length > 3 || parts[0] === '') throw new UsageError(`--${flag} takes AVG[,PEAK[,BURST]] (KB/s, KB/s, KB), not ${JSON.stringify(v)}`);
  const num = (s: string): number => {
    if (!/^\d+$/.test(s)) throw new UsageError(`--${flag}: ${JSON.stringify(s)} is not a whole number`);
    return Number(s);
  };
  const r: BandwidthRate = { average: num(parts[0]!) };
  if (parts[1]) r.peak = num(parts[1]);
  if (parts[2]) r.burst = num(parts[2]);
  return r;
}

function describe(r: BandwidthRate | undefined): string {
  if (!r) return 'unlimited';
  return `average ${r.average} KB/s${r.peak !== undefined ? ` peak ${r.peak} KB/s` : ''} burst ${r.burst ?? '-'} KB`;
}

/** Shows the limits, or sets exactly the directions given (`--clear`: none). */
export async function bandwidthCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      inbound: { type: 'string' }, outbound: { type: 'string' }, clear: { type: 'boolean' },
      netns: { type: 'string' }, json: { type: 'boolean' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('bandwidth takes one DEV (name or ifindex)');
  const dev = linkArg(positionals[0] as string);
  const opts = { ...(values.netns !== undefined && { netns: netnsArg(values.netns) }) };
  const setting = values.inbound !== undefined || values.outbound !== undefined;
  if (values.clear && setting) throw new UsageError('bandwidth takes --clear or rates, not both');
  if (values.clear) {
    await setBandwidth(dev, null, opts);
  } else if (setting) {
    const bw: Bandwidth = {};
    if (values.inbound !== undefined) bw.inbound = rateArg('inbound', values.inbound);
    if (values.outbound !== undefined) bw.outbound = rateArg('outbound', values.outbound);
    await setBandwidth(dev, bw, opts);
  }
  const now = await getBandwidth(dev, opts);
  if (values.json) {
    process.stdout.write(JSON.stringify(now, null, 2) + '\n');
  } else {
    process.stdout.write(`inbound (to the guest):    ${describe(now.inbound)}\noutbound (from the guest): ${describe(now.outbound)}\n`);
  }
  return 0;
}
