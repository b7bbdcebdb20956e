/**
 * Tap queues: the fds of a macvtap's character device, each one queue of the device. The addon owns every fd until
 * {@link TapQueue.close} or {@link TapQueue.detach}; what is still open when the Node environment exits (or a worker
 * terminates) is closed by the addon's cleanup hook.
 */
import { binding } from './binding.js';
import { callNative, callNativeSync, invalidType, invalidValue } from './errors.js';
import type { LinkRef, OpenTapOptions, TapReadOptions } from './types.js';
import * as v from './validate.js';

const TUN_F_CSUM = 0x01;
const TUN_F_TSO4 = 0x02;
const TUN_F_TSO6 = 0x04;
const TUN_F_TSO_ECN = 0x08;
const TUN_F_UFO = 0x10;
const MAX_FRAME = 65550;

// A queue dropped without close() would hold its device queue until exit; close it when collected, as Node does for
// an unclosed FileHandle, and say so: a leak in the caller is worth knowing about.
const collector = new FinalizationRegistry<number[]>((fds) => {
  for (const fd of fds) {
    try {
      binding.fdClose(fd);
      process.emitWarning(`macvtap: closing tap queue fd ${fd} on garbage collection; call close() or detach()`, 'MacvtapWarning');
    } catch {
      // Already closed or released through another path.
    }
  }
});

/** One queue (one fd) of a macvtap's character device. */
export class TapQueue {
  /** The link's name when the queue was opened. */
  readonly device: string;
  /** The link's ifindex (in its own namespace). */
  readonly ifindex: number;
  /** Position of this queue among those opened together (0-based). */
  readonly index: number;
  /** Frames carry a virtio-net header (`IFF_VNET_HDR`). */
  readonly vnetHdr: boolean;
  /** The vnet header length in front of each frame (0 without `vnetHdr`). */
  readonly vnetHdrSize: number;
  /** The node that was opened (`/dev/tapN`, or a private node already removed). */
  readonly path: string;
  #fd: number;
  #vhostFd: number;
  #state: 'open' | 'closed' | 'detached' = 'open';

  /** @internal Queues are made by {@link openTap}. */
  constructor(
    fd: number,
    info: { device: string; ifindex: number; index: number; vnetHdr: boolean; vnetHdrSize: number; path: string; vhostFd?: number },
  ) {
    this.#fd = fd;
    this.#vhostFd = info.vhostFd ?? -1;
    this.device = info.device;
    this.ifindex = info.ifindex;
    this.index = info.index;
    this.vnetHdr = info.vnetHdr;
    this.vnetHdrSize = info.vnetHdrSize;
    this.path = info.path;
    collector.register(this, this.#vhostFd >= 0 ? [fd, this.#vhostFd] : [fd], this);
  }

  /** The file descriptor, or -1 once closed or detached. */
  get fd(): number {
    return this.#state === 'open' ? this.#fd : -1;
  }

  /**
   * The `/dev/vhost-net` fd that serves this queue (opened with `vhost: true`), for QEMU's `vhostfds=`; -1 without
   * one, and once closed or detached. It lives and ends with the queue: {@link close} closes it, {@link detach} hands
   * it away too (read it before detaching).
   */
  get vhostFd(): number {
    return this.#state === 'open' ? this.#vhostFd : -1;
  }

  /** `true` once {@link close} or {@link detach} was called. */
  get closed(): boolean {
    return this.#state !== 'open';
  }

  /**
   * Closes the fd. Idempotent; a no-op after {@link detach}. The queue is closed for this object at once (`fd` becomes
   * -1); the kernel's part (an RCU grace period per queue) runs off the event loop, and the promise resolves when it
   * is done — await it when the queue must really be gone, e.g. before counting queues.
   */
  close(): Promise<void> {
    if (this.#state !== 'open') return Promise.resolve();
    // Mark first so a second close() cannot reach a reused fd number.
    this.#state = 'closed';
    collector.unregister(this);
    const fd = this.#fd;
    const vhostFd = this.#vhostFd;
    // Both closes wait for the kernel (each release ends in an RCU grace period); they run side by side.
    const tap = callNative(() => binding.fdCloseAsync(fd));
    if (vhostFd < 0) return tap;
    const vhost = callNative(() => binding.fdCloseAsync(vhostFd));
    return Promise.all([tap, vhost]).then(() => undefined);
  }

  /**
   * Hands the fd away: returns it, and this object never closes it (not on {@link close}, not at exit). The caller now
   * owns it — e.g. to pass to QEMU as `-netdev tap,fd=N`, or to keep across an `exec`. The {@link vhostFd}, if any,
   * is handed away with it: read its number first.
   */
  detach(): number {
    if (this.#state !== 'open') throw invalidValue('queue', `is already ${this.#state}`, this.#fd);
    this.#state = 'detached';
    collector.unregister(this);
    callNativeSync(() => binding.fdRelease(this.#fd));
    if (this.#vhostFd >= 0) callNativeSync(() => binding.fdRelease(this.#vhostFd));
    return this.#fd;
  }

  /**
   * `using q = …`: closes the queue at the end of the scope without waiting for the kernel's grace period (the fd is
   * released at once; a failure of the deferred close, which tap fds do not have, would be a process warning).
   */
  [Symbol.dispose](): void {
    this.close().catch((e: unknown) => process.emitWarning(`macvtap: closing tap queue failed: ${String(e)}`, 'MacvtapWarning'));
  }

  /** `await using q = …`: closes the queue at the end of the scope and waits until the kernel is done. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Waits for one frame and reads it (vnet header included when {@link vnetHdr}). Resolves `null` when none came
   * within the timeout. Runs off the event loop. For tests and simple tools: a datapath would use the fd directly.
   */
  async read(options?: TapReadOptions): Promise<Buffer | null> {
    const opts = v.options('options', options);
    v.knownKeys('options', opts, ['timeout', 'maxLength']);
    const timeout = opts.timeout === undefined ? 1000 : v.integer('timeout', opts.timeout, 0, 2 ** 31 - 1);
    const maxLength = opts.maxLength === undefined ? MAX_FRAME : v.integer('maxLength', opts.maxLength, 1, 1 << 20);
    const fd = this.#liveFd('read');
    return callNative(() => binding.tapRead(fd, maxLength, timeout));
  }

  /**
   * Writes one frame (vnet header first when {@link vnetHdr}); returns the bytes written. On a queue opened without
   * `nonblock`, a shaped device (see `setBandwidth`) makes this wait until the shaper has room — it waits in `poll()`
   * first, because a bare blocking `write()` on a tap fd whose send buffer is full is not woken when it drains.
   */
  write(frame: Uint8Array): number {
    if (!(frame instanceof Uint8Array)) throw invalidType('frame', 'a Buffer or Uint8Array', frame);
    const fd = this.#liveFd('write');
    const buf = Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    return callNativeSync(() => binding.tapWrite(fd, buf));
  }

  #liveFd(what: string): number {
    if (this.#state !== 'open') throw invalidValue('queue', `is ${this.#state}; cannot ${what}`, this.#fd);
    return this.#fd;
  }
}

const OPEN_KEYS = ['queues', 'vnetHdr', 'vnetHdrSize', 'offloads', 'nonblock', 'vhost', 'netns'] as const;

/**
 * Opens queues of a macvtap's character device. The right device is opened even when `/dev/tapN` is missing or
 * belongs to another namespace's macvtap with the same ifindex: the node's `st_rdev` is checked against the device's
 * own major:minor and a private node is used when they differ.
 *
 * Equivalent to what QEMU/libvirt do: `open("/dev/tapN")` per queue, `ioctl(TUNSETIFF)`, `TUNSETVNETHDRSZ`,
 * `TUNSETOFFLOAD`; with `vhost: true` also libvirt's `virNetDevVhostOpen`: `open("/dev/vhost-net")` per queue.
 *
 * @example
 * ```ts
 * const queues = await openTap('macvtap0', { queues: 4 });
 * spawn('qemu-system-x86_64', [..., '-netdev', `tap,id=n0,fds=3:4:5:6`], { stdio: ['inherit', 'inherit', 'inherit', ...queues.map((q) => q.fd)] });
 * ```
 * @example
 * ```ts
 * const queues = await openTap('macvtap0', { queues: 2, vhost: true, nonblock: true });
 * // -netdev tap,id=n0,fds=3:4,vhost=on,vhostfds=5:6 with [...queues.map((q) => q.fd), ...queues.map((q) => q.vhostFd)]
 * ```
 * @throws {@link MacvtapError} `ENODEV` (no such link), `EINVAL` (not a macvtap), `EBUSY` (more than 256 queues),
 *   `EPERM`; with `vhost`, `ENOENT`/`EOPNOTSUPP` (syscall `open`, path `/dev/vhost-net`) when the kernel has no
 *   vhost-net (the message names `CONFIG_VHOST_NET` and the module `vhost_net`). Nothing is left open on any failure.
 */
export async function openTap(link: LinkRef, options?: OpenTapOptions): Promise<TapQueue[]> {
  const key = v.linkRef('link', link);
  const opts = v.options('options', options);
  v.knownKeys('options', opts, OPEN_KEYS);
  const queues = opts.queues === undefined ? 1 : v.integer('queues', opts.queues, 1, v.MAX_TAP_QUEUES);
  const vnetHdr = opts.vnetHdr === undefined ? true : v.bool('vnetHdr', opts.vnetHdr);
  let vnetHdrSize = 0;
  if (opts.vnetHdrSize !== undefined) {
    if (!vnetHdr) throw invalidValue('vnetHdrSize', 'applies only with vnetHdr: true', opts.vnetHdrSize);
    vnetHdrSize = v.integer('vnetHdrSize', opts.vnetHdrSize, 10, 65535);
  }
  let offloads = -1;
  if (opts.offloads !== undefined) {
    if (!vnetHdr) throw invalidValue('offloads', 'applies only with vnetHdr: true (offloaded frames need the header)', opts.offloads);
    const o = v.options('offloads', opts.offloads);
    v.knownKeys('offloads', o, ['csum', 'tso4', 'tso6', 'tsoEcn', 'ufo']);
    const bit = (name: keyof typeof o, flag: number): number => (o[name] !== undefined && v.bool(`offloads.${name}`, o[name]) ? flag : 0);
    offloads = bit('csum', TUN_F_CSUM) | bit('tso4', TUN_F_TSO4) | bit('tso6', TUN_F_TSO6) | bit('tsoEcn', TUN_F_TSO_ECN) | bit('ufo', TUN_F_UFO);
    if (offloads & ~TUN_F_CSUM && !(offloads & TUN_F_CSUM)) throw invalidValue('offloads', 'needs csum: true for any segmentation offload (the kernel refuses otherwise)', opts.offloads);
  }
  const nonblock = opts.nonblock === undefined ? false : v.bool('nonblock', opts.nonblock);
  const vhost = opts.vhost === undefined ? false : v.bool('vhost', opts.vhost);
  const ns = v.nsOf(opts);
  const res = await callNative(() => binding.tapOpen(key, { queues, vnetHdr, vnetHdrSize, offloads, nonblock, vhost }, ns));
  const size = vnetHdr ? vnetHdrSize || 10 : 0;
  return res.fds.map(
    (fd, index) =>
      new TapQueue(fd, {
        device: res.name, ifindex: res.ifindex, index, vnetHdr, vnetHdrSize: size, path: res.path,
        ...(vhost && { vhostFd: res.vhostFds[index]! }),
      }),
  );
}
