/**
 * `macvtap exec --dev D [--queues N] [--netns NS] [--no-vnet-hdr] -- CMD ARGS…`: opens the queues, then replaces this
 * process with CMD (execvp: CMD gets our PID, so whoever supervises us supervises it), the queue fds inherited and
 * `{fds}` in ARGS replaced by them colon-separated (QEMU's `-netdev tap,fds={fds}`), `{fd}` by the first one.
 */
import { parseArgs } from 'node:util';
import { openTap } from '../../lib/index.js';
import { binding } from '../../lib/binding.js';
import { callNativeSync } from '../../lib/errors.js';
import { intArg, linkArg, netnsArg, UsageError } from '../args.js';

/** Replaces `{fds}` and `{fd}` in each argument. */
export function substituteFds(args: string[], fds: number[]): string[] {
  const list = fds.join(':');
  return args.map((a) => a.replaceAll('{fds}', list).replaceAll('{fd}', String(fds[0])));
}

export async function execCommand(argv: string[]): Promise<number> {
  const split = argv.indexOf('--');
  if (split < 0 || split === argv.length - 1) throw new UsageError('exec needs -- CMD [ARGS…] after its options');
  const { values } = parseArgs({
    args: argv.slice(0, split),
    options: {
      dev: { type: 'string' }, queues: { type: 'string' }, netns: { type: 'string' },
      'no-vnet-hdr': { type: 'boolean' }, nonblock: { type: 'boolean' },
    },
  });
  if (!values.dev) throw new UsageError('exec needs --dev DEV');
  const queues = await openTap(linkArg(values.dev), {
    queues: intArg('queues', values.queues) ?? 1,
    vnetHdr: !values['no-vnet-hdr'],
    ...(values.nonblock && { nonblock: true }),
    ...(values.netns !== undefined && { netns: netnsArg(values.netns) }),
  });
  const fds = queues.map((q) => q.detach());
  const [cmd, ...rest] = argv.slice(split + 1) as [string, ...string[]];
  // Only returns by throwing (ENOENT, EACCES, …).
  callNativeSync(() => binding.execvp(cmd, [cmd, ...substituteFds(rest, fds)], fds));
  return 127;
}
