/**
 * Plain tap devices from `/dev/net/tun` (the "tap + Linux bridge" / "tap + OVS" attachments QEMU uses without
 * macvtap). The device is created in the namespace asked for (the addon opens `/dev/net/tun` on a thread inside it)
 * and is not persistent: it disappears when its queue is closed.
 */
import { binding } from './binding.js';
import { callNative, invalidValue } from './errors.js';
import { TapQueue } from './tap.js';
import type { CreateTapOptions } from './types.js';
import * as v from './validate.js';

/**
 * Creates a tap device and returns its one queue (a {@link TapQueue}: owned fd, `read`/`write`, `close`, `detach`).
 * Closing the queue removes the device.
 *
 * Equivalent to: `ip tuntap add NAME mode tap [vnet_hdr]` without `persist`, opened at once (what QEMU's
 * `-netdev tap,ifname=NAME` does).
 *
 * @example
 * ```ts
 * const q = await createTap({ name: 'tap%d', up: true, netns: '/run/netns/lab' });
 * await setLink(q.device, { master: 'br0' }, { netns: '/run/netns/lab' });
 * ```
 * @throws TypeError/RangeError for bad options.
 * @throws {@link MacvtapError} `EBUSY`/`EEXIST` (`ioctl(TUNSETIFF)`: the name is another device's), `EPERM`.
 */
export async function createTap(options: CreateTapOptions): Promise<TapQueue> {
  const opts = v.options('options', options);
  v.knownKeys('options', opts, ['name', 'vnetHdr', 'up', 'netns']);
  if (opts.name === undefined) throw invalidValue('name', 'is required', undefined);
  const name = v.linkName('name', opts.name, true);
  const vnetHdr = opts.vnetHdr === undefined ? false : v.bool('vnetHdr', opts.vnetHdr);
  const up = opts.up === undefined ? false : v.bool('up', opts.up);
  const ns = v.nsOf(opts);
  const res = await callNative(() => binding.tunCreate(name, { vnetHdr }, ns));
  const queue = new TapQueue(res.fd, { device: res.name, ifindex: res.ifindex, index: 0, vnetHdr, vnetHdrSize: vnetHdr ? 10 : 0, path: '/dev/net/tun' });
  if (up) {
    try {
      await callNative(() => binding.linkSet({ index: res.ifindex }, { up: true }, ns));
    } catch (e) {
      await queue.close();  // the device goes with its fd: nothing is left behind
      throw e;
    }
  }
  return queue;
}
