/**
 * Hot-plugging a macvtap into a running QEMU over QMP: its queue fds go over the QMP socket with `SCM_RIGHTS`
 * (`getfd`), then `netdev_add` (tap over those fds) and `device_add` (virtio-net-pci with the link's MAC); unplugging is
 * `device_del`, the guest's `DEVICE_DELETED`, `netdev_del`. Each failing step undoes the earlier ones, so QEMU's fd
 * table and ours end as they began.
 */
import { randomBytes } from 'node:crypto';
import { MacvtapError, invalidType } from '../errors.js';
import { getLink } from '../link.js';
import { openTap, type TapQueue } from '../tap.js';
import type { LinkRef, Netns } from '../types.js';
import * as v from '../validate.js';
import { hostMtu, macvtapMac, MAX_QEMU_QUEUES, netdevIdFor, nicProperties } from './netdev.js';
import { peripheralIds, qemuId, qmpClient, type QmpClient } from './qmp.js';

/** Options of {@link attachMacvtap}. */
export interface AttachMacvtapOptions {
  /** The NIC's QEMU id (the backend is `ID-tap`, as in {@link qemuNetdevArgs}). */
  id: string;
  /** Queue pairs (fds opened on the macvtap). Default 1; at most {@link MAX_QEMU_QUEUES}. */
  queues?: number;
  /** The namespace the macvtap is in. */
  netns?: Netns;
  /**
   * The bus to plug into (`device_add … bus=`). Default: QEMU's choice — on `pc` machines the root bus, whose slots
   * take ACPI hot-plug; `q35`'s root bus takes none, so there name a free `pcie-root-port` (`-device
   * pcie-root-port,id=rp1,…` at start, then `bus: 'rp1'`).
   */
  bus?: string;
  /** `host_mtu`: the MTU the device offers the guest; at most the link's. Default: none offered. */
  mtu?: number;
  /**
   * Also open `/dev/vhost-net` per queue (`openTap`'s `vhost`) and send those fds too: the backend gets
   * `vhost=on,vhostfds=…`, and the kernel runs the queues' datapath. Refused (`ENOENT`/`EOPNOTSUPP` naming
   * `vhost_net`) on a kernel without vhost-net, before anything is sent to QEMU.
   */
  vhost?: boolean;
}

/** What {@link attachMacvtap} plugged in. */
export interface MacvtapAttachment {
  /** The NIC's id: pass it to {@link detachMacvtap}. */
  deviceId: string;
  /** The tap backend's id. */
  netdevId: string;
  /** The macvtap's name and ifindex when it was attached. */
  device: string;
  ifindex: number;
  /** The MAC the NIC has: the link's. */
  mac: string;
  /** Queue pairs. */
  queues: number;
  /** Whether the backend runs on vhost-net. */
  vhost: boolean;
}

/** Options of {@link detachMacvtap}. */
export interface DetachMacvtapOptions {
  /** How long the guest has to release the device (`DEVICE_DELETED`), ms. Default 30000. */
  timeoutMs?: number;
}

function inUse(what: string, id: string, device: string): MacvtapError {
  return new MacvtapError({ code: 'EEXIST', errno: -17, syscall: 'device_add', device }, `QEMU already has a ${what} with id "${id}"`);
}

/** The net clients QEMU has (NICs and backends), by name: `info network`, the one place QMP lists backends. */
async function netClientNames(qmp: QmpClient): Promise<Set<string>> {
  const text = String(await qmp.execute('human-monitor-command', { 'command-line': 'info network' }));
  const names = new Set<string>();
  // "net0: index=0,type=nic,…" and, indented under its NIC, " \ hostnet0: index=0,type=tap,…".
  for (const m of text.matchAll(/^[ \\]*([^\s:\\]+): index=/gm)) names.add(m[1]!);
  return names;
}

/**
 * Plugs a macvtap into a running QEMU as a virtio-net NIC with the link's MAC: opens `queues` queues, sends each fd
 * with `getfd` (`SCM_RIGHTS` on the QMP socket), `netdev_add` a tap backend over them, `device_add` the NIC
 * (`mq=on,vectors=2N+2` for several queues). Our copies of the fds are closed once QEMU holds its own: the queues then
 * live as long as QEMU's backend. The guest sees a PCI hot-plug (on `pc`, ACPI; see {@link AttachMacvtapOptions.bus}).
 *
 * Any step failing undoes the earlier ones (`netdev_del`, `closefd`) and closes our fds; a QEMU that dies mid-way
 * rejects with `ERR_QMP_CLOSED` and our fds are closed.
 *
 * Equivalent to libvirt's `virsh attach-interface DOM direct DEV --model virtio` (its `qemuDomainAttachNetDevice`).
 *
 * @example
 * ```ts
 * await using qmp = await connectQmp('/run/vm1/qmp.sock');
 * const nic = await attachMacvtap(qmp, 'mvtap0', { id: 'net1', queues: 2, netns: '/run/netns/vm1' });
 * // … later
 * await detachMacvtap(qmp, nic.deviceId);
 * ```
 * @throws `TypeError`/`RangeError` for bad options or more than {@link MAX_QEMU_QUEUES} queues; {@link MacvtapError}
 *   `EEXIST` when QEMU already has a device or backend with these ids (all before any fd is sent), `ENODEV` (no such
 *   link), `EBUSY` (the tap driver's queue limit), `ENOENT`/`EOPNOTSUPP` for `vhost` without vhost-net; {@link QmpError} for QEMU's refusals (e.g. `Bus 'x' not found`);
 *   `QmpProtocolError` `ERR_QMP_CLOSED`/`ERR_QMP_TIMEOUT`.
 */
export async function attachMacvtap(qmp: QmpClient, link: LinkRef, options: AttachMacvtapOptions): Promise<MacvtapAttachment> {
  const q = qmpClient(qmp);
  v.linkRef('link', link);
  if (!v.isPlainObject(options)) throw invalidType('options', 'an object with an id', options);
  v.knownKeys('options', options, ['id', 'queues', 'netns', 'bus', 'mtu', 'vhost']);
  const deviceId = qemuId('id', options.id);
  const netdevId = netdevIdFor(deviceId);
  const queues = options.queues === undefined ? 1 : v.integer('queues', options.queues, 1, MAX_QEMU_QUEUES);
  const netns = options.netns === undefined ? undefined : v.netns('netns', options.netns);
  const bus = options.bus === undefined ? undefined : qemuId('bus', options.bus);
  const vhost = options.vhost === undefined ? false : v.bool('vhost', options.vhost);
  const info = await getLink(link, netns === undefined ? undefined : { netns });
  const l = macvtapMac(info);
  const mtu = options.mtu === undefined ? undefined : hostMtu('mtu', options.mtu, l.mtu);

  // Ids first, while nothing is sent: getfd would silently replace a same-named fd, device_add and netdev_add refuse
  // a duplicate only after the earlier steps ran.
  if ((await peripheralIds(q)).includes(deviceId)) throw inUse('device', deviceId, l.name);
  if ((await netClientNames(q)).has(netdevId)) throw inUse('network backend', netdevId, l.name);

  const taps: TapQueue[] = await openTap(info.ifindex, { queues, ...(vhost && { vhost }), ...(netns !== undefined && { netns }) });
  // Unique per attach: a name left behind by someone else's failed getfd must not be taken for ours.
  const nonce = randomBytes(4).toString('hex');
  const names = taps.map((_, i) => `${deviceId}.q${i}.${nonce}`);
  const vhostNames = vhost ? taps.map((_, i) => `${deviceId}.v${i}.${nonce}`) : [];
  const sent: string[] = [];
  let netdevAdded = false;
  try {
    for (let i = 0; i < taps.length; i++) {
      await q.execute('getfd', { fdname: names[i] }, { fds: [taps[i]!.fd] });
      sent.push(names[i]!);
      if (vhost) {
        await q.execute('getfd', { fdname: vhostNames[i] }, { fds: [taps[i]!.vhostFd] });
        sent.push(vhostNames[i]!);
      }
    }
    const list = (key: string, n: string[]): Record<string, string> => (n.length === 1 ? { [key]: n[0]! } : { [`${key}s`]: n.join(':') });
    await q.execute('netdev_add', { type: 'tap', id: netdevId, ...list('fd', names), ...(vhost && { vhost: true, ...list('vhostfd', vhostNames) }) });
    netdevAdded = true;
    await q.execute('device_add', nicProperties({ deviceId, netdevId, mac: l.mac, queues, mtu, bus }));
  } catch (e) {
    // Undo in reverse. netdev_del closes the fds the backend took; closefd the ones no backend took. Each undo
    // step may fail (QEMU gone, an fd the failed netdev_add consumed): the first error is what the caller gets.
    if (netdevAdded) await q.execute('netdev_del', { id: netdevId }).catch(() => undefined);
    else for (const name of sent.reverse()) await q.execute('closefd', { fdname: name }).catch(() => undefined);
    await Promise.all(taps.map((t) => t.close()));
    throw e;
  }
  await Promise.all(taps.map((t) => t.close()));
  return { deviceId, netdevId, device: l.name, ifindex: info.ifindex, mac: l.mac, queues, vhost };
}

/**
 * Unplugs a NIC: `device_del`, waits for the guest to release it (`DEVICE_DELETED`), then `netdev_del` of its
 * backend (read from the device's `netdev` property, so NICs plugged at start by {@link qemuNetdevArgs} work too).
 * QEMU then closes its queue fds; the macvtap itself is untouched (delete it with `deleteLink`).
 * A `followRxFilter` follower of the NIC stops by itself (`'stop'` with reason `'deleted'`).
 *
 * Equivalent to libvirt's `virsh detach-interface DOM direct --mac MAC`.
 *
 * @throws {@link QmpError} `DeviceNotFound`/`GenericError` when there is no such device; `QmpProtocolError`
 *   `ERR_QMP_TIMEOUT` when the guest does not release it in time (no ACPI hot-plug in the guest, or it is
 *   hung) — the device then stays, and so does its backend.
 */
export async function detachMacvtap(qmp: QmpClient, id: string, options?: DetachMacvtapOptions): Promise<{ deviceId: string; netdevId: string | null }> {
  const q = qmpClient(qmp);
  const deviceId = qemuId('id', id);
  const opts = v.options('options', options);
  v.knownKeys('options', opts, ['timeoutMs']);
  const timeoutMs = opts.timeoutMs === undefined ? 30_000 : v.integer('timeoutMs', opts.timeoutMs, 1, 2 ** 31 - 1);
  const netdev = await q.execute('qom-get', { path: `/machine/peripheral/${deviceId}`, property: 'netdev' });
  const netdevId = typeof netdev === 'string' && netdev.length > 0 ? netdev : null;
  const stop = new AbortController();
  // Waiting starts before device_del: a guest may release the device before the command's reply is read.
  const deleted = q.waitEvent('DEVICE_DELETED', (d) => d.device === deviceId, { timeoutMs, signal: stop.signal });
  deleted.catch(() => undefined);
  try {
    await q.execute('device_del', { id: deviceId });
  } catch (e) {
    stop.abort();
    throw e;
  }
  await deleted;
  if (netdevId !== null) await q.execute('netdev_del', { id: netdevId });
  return { deviceId, netdevId };
}
