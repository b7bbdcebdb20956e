/**
 * `macvtap qmp attach|detach --socket S …`: hot-plugs a macvtap into a running QEMU over its QMP socket, or unplugs
 * it (the library's `attachMacvtap`/`detachMacvtap`). QEMU serves one QMP client per socket: the command connects,
 * does its work and disconnects.
 */
import { parseArgs } from 'node:util';
import { attachMacvtap, connectQmp, detachMacvtap } from '../../lib/index.js';
import { intArg, linkArg, netnsArg, UsageError } from '../args.js';

/** The NIC id when --id is not given: `mvt-DEV`, when DEV makes a valid QEMU id. */
function defaultId(dev: string | undefined): string {
  if (dev === undefined) throw new UsageError('qmp needs --id ID or --dev DEV');
  const id = `mvt-${dev}`;
  if (!/^[A-Za-z][A-Za-z0-9._-]*$/.test(id)) throw new UsageError(`--dev ${JSON.stringify(dev)} does not make a QEMU id: give --id`);
  return id;
}

export async function qmpCommand(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb !== 'attach' && verb !== 'detach') throw new UsageError('qmp takes attach or detach');
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      socket: { type: 'string' }, dev: { type: 'string' }, id: { type: 'string' }, queues: { type: 'string' },
      netns: { type: 'string' }, bus: { type: 'string' }, mtu: { type: 'string' }, timeout: { type: 'string' },
      vhost: { type: 'boolean' }, json: { type: 'boolean' },
    },
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new UsageError(`qmp ${verb} takes no positional arguments (got ${positionals.join(' ')})`);
  if (!values.socket) throw new UsageError(`qmp ${verb} needs --socket PATH (QEMU's -qmp unix:PATH,server=on,wait=off)`);
  const id = values.id ?? defaultId(values.dev);
  if (verb === 'attach') {
    if (!values.dev) throw new UsageError('qmp attach needs --dev DEV');
    if (values.timeout !== undefined) throw new UsageError('--timeout is for qmp detach');
  } else {
    for (const k of ['queues', 'netns', 'bus', 'mtu', 'vhost'] as const) if (values[k] !== undefined) throw new UsageError(`--${k} is for qmp attach`);
  }
  const qmp = await connectQmp(values.socket);
  try {
    if (verb === 'attach') {
      const queues = intArg('queues', values.queues);
      const mtu = intArg('mtu', values.mtu);
      const nic = await attachMacvtap(qmp, linkArg(values.dev!), {
        id,
        ...(queues !== undefined && { queues }),
        ...(values.netns !== undefined && { netns: netnsArg(values.netns)! }),
        ...(values.bus !== undefined && { bus: values.bus }),
        ...(mtu !== undefined && { mtu }),
        ...(values.vhost && { vhost: true }),
      });
      process.stdout.write(values.json ? JSON.stringify(nic) + '\n'
        : `attached ${nic.device} as ${nic.deviceId} (backend ${nic.netdevId}, mac ${nic.mac}, ${nic.queues} queue${nic.queues === 1 ? '' : 's'}${nic.vhost ? ', vhost-net' : ''})\n`);
    } else {
      const timeoutMs = intArg('timeout', values.timeout);
      const r = await detachMacvtap(qmp, id, timeoutMs === undefined ? undefined : { timeoutMs });
      process.stdout.write(values.json ? JSON.stringify(r) + '\n' : `detached ${r.deviceId}${r.netdevId ? ` (backend ${r.netdevId})` : ''}\n`);
    }
  } finally {
    await qmp.close();
  }
  return 0;
}
