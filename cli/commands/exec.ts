/**
 * `macvtap exec --dev D [--queues N] [--netns NS] [--no-vnet-hdr] [--vhost] -- CMD ARGS…`: opens the queues, then
 * replaces this process with CMD (execvp: CMD gets our PID, so whoever supervises us supervises it), the queue fds
 * inherited and `{fds}` in ARGS replaced by them colon-separated (QEMU's `-netdev tap,fds={fds}`), `{fd}` by the first
 * one. With `--vhost` one `/dev/vhost-net` fd per queue is inherited too, `{vhostfds}`/`{vhostfd}` likewise
 * (`vhost=on,vhostfds={vhostfds}`). Nothing is printed: the placeholders are how CMD learns the numbers.
 */
import { parseArgs } from 'node:util';
import { openTap } from '../../lib/index.js';
import { binding } from '../../lib/binding.js';
import { callNativeSync } from '../../lib/errors.js';
import { intArg, linkArg, netnsArg, UsageError } from '../args.js';

/** Replaces `{fds}` and `{fd}` in each argument, and `{vhostfds}`/`{vhostfd}` when vhost fds were opened. */
export function substituteFds(args: string[], fds: number[], vhostFds: number[] = []): string[] {
  const list = fds.join(':');
  const vlist = vhostFds.join(':');
  return args.map((a) => {
    const r = vhostFds.length > 0 ? a.replaceAll('{vhostfds}', vlist).replaceAll('{vhostfd}', String(vhostFds[0])) : a;
    return r.replaceAll('{fds}', list).replaceAll('{fd}', String(fds[0]));
  });
}

export async function execCommand(argv: string[]): Promise<number> {
  const split = argv.indexOf('--');
  if (split < 0 || split === argv.length - 1) throw new UsageError('exec needs -- CMD [ARGS…] after its options');
  const { values } = parseArgs({
    args: argv.slice(0, split),
    options: {
      dev: { type: 'string' }, queues: { type: 'string' }, netns: { type: 'string' },
      'no-vnet-hdr': { type: 'boolean' }, nonblock: { type: 'boolean' }, vhost: { type: 'boolean' },
    },
  });
  if (!values.dev) throw new UsageError('exec needs --dev DEV');
  const [cmd, ...rest] = argv.slice(split + 1) as [string, ...string[]];
  // Before anything is opened: a vhost placeholder without --vhost would reach CMD as literal text.
  if (!values.vhost) {
    const bad = rest.find((a) => /\{vhostfds?\}/.test(a));
    if (bad !== undefined) throw new UsageError(`${bad}: {vhostfds}/{vhostfd} need --vhost`);
  }
  const queues = await openTap(linkArg(values.dev), {
    queues: intArg('queues', values.queues) ?? 1,
    vnetHdr: !values['no-vnet-hdr'],
    ...(values.nonblock && { nonblock: true }),
    ...(values.vhost && { vhost: true }),
    ...(values.netns !== undefined && { netns: netnsArg(values.netns) }),
  });
  // vhostFd is read before detach(), which hands it away with its queue.
  const vhostFds = values.vhost ? queues.map((q) => q.vhostFd) : [];
  const fds = queues.map((q) => q.detach());
  // Only returns by throwing (ENOENT, EACCES, …).
  callNativeSync(() => binding.execvp(cmd, [cmd, ...substituteFds(rest, fds, vhostFds)], [...fds, ...vhostFds]));
  return 127;
}
