/**
 * QEMU's view of a macvtap: the `-netdev tap` backend over our queue fds and the `virtio-net-pci` front end with the
 * link's own MAC and the vector count its queues need — as command-line arguments ({@link qemuNetdevArgs}) and as the
 * QMP `device_add` arguments the hot-plug uses, from one description so both say the same.
 */
import { invalidType, invalidValue, outOfRange } from '../errors.js';
import { TapQueue } from '../tap.js';
import type { LinkInfo } from '../types.js';
import * as v from '../validate.js';
import { qemuId } from './qmp.js';

/**
 * virtio-net queue pairs one macvtap can back: the tap driver's `MAX_TAP_QUEUES` (QEMU's own virtio-net limit, 511
 * pairs, is higher).
 */
export const MAX_QEMU_QUEUES = v.MAX_TAP_QUEUES;

/** Options of {@link qemuNetdevArgs}. */
export interface QemuNetdevOptions {
  /**
   * The NIC's id (`-device …,id=ID`: what `device_del`, `DEVICE_DELETED`, `query-rx-filter` and
   * `NIC_RX_FILTER_CHANGED` name). The backend is `ID-tap` (`-netdev tap,id=ID-tap`): QEMU keeps NICs and backends
   * in one list of net clients, and `query-rx-filter` by name fails when a backend shares the NIC's name.
   */
  id: string;
  /** vhost-net fds, one per queue, as QEMU will see them: `vhost=on,vhostfd=`/`vhostfds=`. */
  vhostFds?: readonly number[];
  /** `host_mtu=`: the MTU the device offers the guest (`VIRTIO_NET_F_MTU`); at most the link's own MTU. */
  mtu?: number;
}

/** What {@link qemuNetdevArgs} returns. */
export interface QemuNetdevArgs {
  /** The backend's id (`ID-tap`). */
  netdevId: string;
  /** The NIC's id (`ID`). */
  deviceId: string;
  /** The `-netdev` value: `tap,id=ID-tap,fd=3` or `tap,id=ID-tap,fds=3:4:5:6[,vhost=on,vhostfds=…]`. */
  netdev: string;
  /** The `-device` value: `virtio-net-pci,id=ID,netdev=ID-tap,mac=<link MAC>[,mq=on,vectors=2N+2][,host_mtu=M]`. */
  device: string;
  /** `['-netdev', netdev, '-device', device]`, to splice into QEMU's argv. */
  args: string[];
}

/** The `-netdev` id for a NIC id (see {@link QemuNetdevOptions.id}). @internal */
export function netdevIdFor(id: string): string {
  return `${id}-tap`;
}

/** A macvtap {@link LinkInfo}'s MAC, refusing anything else. @internal */
export function macvtapMac(link: unknown): { mac: string; mtu: number; name: string } {
  if (!v.isPlainObject(link) || typeof link.name !== 'string') throw invalidType('link', 'a LinkInfo (from getLink or createMacvtap)', link);
  if (link.kind !== 'macvtap') throw invalidValue('link', `must be a macvtap (kind is ${String(link.kind)})`, link.name);
  if (v.macKind(link.mac) !== 'unicast') throw invalidValue('link', 'has no unicast MAC', link.name);
  return { mac: String(link.mac).toLowerCase(), mtu: Number(link.mtu), name: link.name };
}

/**
 * The virtio-net-pci properties for `queues` queues (`device_add` arguments; the command line is the same as
 * `key=value`). One queue: neither `mq` nor `vectors` — QEMU's defaults (mq off; vectors 3 before QEMU 7.1, 2N+2
 * since) serve a single queue pair, and libvirt sets neither either. N > 1: `mq=on` (or the guest sees one queue
 * pair) and `vectors=2N+2` (one per virtqueue, one for config, one for the control queue: fewer and the guest
 * shares interrupts between queues).
 * @internal
 */
export function nicProperties(o: { deviceId: string; netdevId: string; mac: string; queues: number; mtu?: number; bus?: string }): Record<string, string | number | boolean> {
  const p: Record<string, string | number | boolean> = { driver: 'virtio-net-pci', id: o.deviceId, netdev: o.netdevId, mac: o.mac };
  if (o.bus !== undefined) p.bus = o.bus;
  if (o.queues > 1) {
    p.mq = true;
    p.vectors = 2 * o.queues + 2;
  }
  if (o.mtu !== undefined) p.host_mtu = o.mtu;
  return p;
}

/** A `host_mtu` for this link: 68 … the link's MTU (a larger one makes the guest send frames the macvtap drops). @internal */
export function hostMtu(option: string, x: unknown, linkMtu: number): number {
  const mtu = v.integer(option, x, v.MIN_MTU, v.MAX_MTU);
  if (Number.isInteger(linkMtu) && linkMtu > 0 && mtu > linkMtu) throw outOfRange(option, `at most the link's MTU (${linkMtu})`, mtu);
  return mtu;
}

function fdList(option: string, x: unknown): number[] {
  if (!Array.isArray(x) || x.length === 0) throw invalidType(option, `an array of 1 to ${MAX_QEMU_QUEUES} fds or TapQueues`, x);
  if (x.length > MAX_QEMU_QUEUES) throw outOfRange(`${option}.length`, `at most ${MAX_QEMU_QUEUES} (the tap driver's queue limit)`, x.length);
  return x.map((q: unknown, i) => {
    if (q instanceof TapQueue) {
      if (q.closed) throw invalidValue(`${option}[${i}]`, 'is a closed queue', q.index);
      return q.fd;
    }
    return v.integer(`${option}[${i}]`, q, 0, 2 ** 31 - 1);
  });
}

/**
 * The `-netdev`/`-device` pair that puts a macvtap into a QEMU started with its queue fds: the backend over the fds,
 * the NIC with the link's own MAC (bridge mode delivers only frames for it: any other MAC and the guest gets no
 * traffic) and, for several queues, `mq=on,vectors=2N+2`. `queues` are the fds as QEMU will see them — `queue.fd` when
 * QEMU inherits them by `exec`, or the child's slot numbers (3, 4, …) when they go through spawn's `stdio`.
 *
 * Equivalent to what libvirt writes for `<interface type='direct'>`: `-netdev tap,fds=…,id=hostnet0` +
 * `-device virtio-net-pci,netdev=hostnet0,id=net0,mac=…,mq=on,vectors=…`.
 *
 * @example
 * ```ts
 * const link = await getLink('mvtap0');
 * const queues = await openTap(link.ifindex, { queues: 2 });
 * const { args } = qemuNetdevArgs(link, [3, 4], { id: 'net0' });
 * spawn('qemu-system-x86_64', [...vmArgs, ...args], { stdio: ['inherit', 'inherit', 'inherit', ...queues.map((q) => q.fd)] });
 * ```
 * @throws `TypeError` when `link` is not a macvtap with a unicast MAC, an fd list is empty or `vhostFds` does not
 *   match `queues` in length; `RangeError` above {@link MAX_QEMU_QUEUES} queues or for an `mtu` above the link's.
 */
export function qemuNetdevArgs(link: LinkInfo, queues: ReadonlyArray<number | TapQueue>, options: QemuNetdevOptions): QemuNetdevArgs {
  const l = macvtapMac(link);
  const fds = fdList('queues', queues);
  if (!v.isPlainObject(options)) throw invalidType('options', 'an object with an id', options);
  v.knownKeys('options', options, ['id', 'vhostFds', 'mtu']);
  const deviceId = qemuId('id', options.id);
  const netdevId = netdevIdFor(deviceId);
  let vhost: number[] | undefined;
  if (options.vhostFds !== undefined) {
    vhost = fdList('vhostFds', options.vhostFds);
    if (vhost.length !== fds.length) throw invalidValue('vhostFds', `must hold one fd per queue (${fds.length})`, vhost.length);
  }
  const mtu = options.mtu === undefined ? undefined : hostMtu('mtu', options.mtu, l.mtu);
  const net = ['tap', `id=${netdevId}`, fds.length === 1 ? `fd=${fds[0]}` : `fds=${fds.join(':')}`];
  if (vhost) net.push('vhost=on', vhost.length === 1 ? `vhostfd=${vhost[0]}` : `vhostfds=${vhost.join(':')}`);
  const props = nicProperties({ deviceId, netdevId, mac: l.mac, queues: fds.length, mtu });
  const device = [String(props.driver), ...Object.entries(props).filter(([k]) => k !== 'driver').map(([k, x]) => `${k}=${x === true ? 'on' : String(x)}`)];
  const netdev = net.join(',');
  const dev = device.join(',');
  return { netdevId, deviceId, netdev, device: dev, args: ['-netdev', netdev, '-device', dev] };
}
