/**
 * Following a guest's receive filter onto its macvtap: what libvirt does for its own macvtaps with
 * `<interface type='direct' trustGuestRxFilters='yes'>`, for a QEMU the caller runs itself.
 *
 * A macvtap delivers unicast only for its own MAC and multicast only for the groups of its own multicast list (macvlan
 * hashes that list into a 256-bit filter; `IFF_PROMISC`/`IFF_ALLMULTI` open it fully). A guest that changes its MAC,
 * joins a multicast group (every IPv6 address joins its solicited-node group: neighbour discovery depends on it) or
 * asks for all-multicast changes only QEMU's virtio-net filter, never the macvtap's — unless someone copies it over.
 * QEMU says when it changed (`NIC_RX_FILTER_CHANGED`, once, until the filter is queried again) and what it is
 * (`query-rx-filter`); this module copies it.
 */
import { EventEmitter } from 'node:events';
import { binding } from '../binding.js';
import { callNative, invalidType, invalidValue, MacvtapError } from '../errors.js';
import { getLink, setLink } from '../link.js';
import type { LinkRef, NetnsOption } from '../types.js';
import * as v from '../validate.js';
import { peripheralIds, qmpClient, type QmpClient, QmpError, QmpProtocolError } from './qmp.js';

const IFF_ALLMULTI = 0x200;

/** Options of {@link followRxFilter}. */
export interface FollowRxFilterOptions extends NetnsOption {
  /** The `-netdev`/`netdev_add` id of the macvtap's backend; its NIC (a `-device …,netdev=ID,id=NIC`) is followed. */
  netdevId: string;
}

/** What the follower last applied to the macvtap (after one `query-rx-filter`). */
export interface RxFilterState {
  /** QEMU's name of the NIC (its device id). */
  nic: string;
  /** The macvtap's MAC: the guest's `main-mac`. */
  mac: string;
  /** `IFF_PROMISC` on the macvtap: the guest is promiscuous, or filters VLANs (as libvirt decides). */
  promisc: boolean;
  /** `IFF_ALLMULTI` on the macvtap: the guest wants every multicast group, or its table overflowed. */
  allmulti: boolean;
  /** The macvtap's static (`ip maddr add`) multicast list: the guest's multicast table (empty when it wants none). */
  multicast: string[];
  /** What this sync changed on the macvtap (empty when it already matched). */
  changed: Array<'mac' | 'promisc' | 'allmulti' | 'multicast'>;
}

/** The guest's filter as `query-rx-filter` returns it (the fields used here). */
interface GuestRxFilter {
  name: string;
  promiscuous: boolean;
  multicast: 'normal' | 'none' | 'all';
  'multicast-overflow': boolean;
  'main-mac': string;
  'vlan-table': number[];
  'multicast-table': string[];
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

function parseGuestFilter(path: string, nic: string, x: unknown): GuestRxFilter {
  const list = Array.isArray(x) ? x : [];
  const f = list.find((e): e is Record<string, unknown> => v.isPlainObject(e) && e.name === nic);
  const ok = f !== undefined && typeof f.promiscuous === 'boolean' && (f.multicast === 'normal' || f.multicast === 'none' || f.multicast === 'all') &&
    typeof f['multicast-overflow'] === 'boolean' && typeof f['main-mac'] === 'string' && Array.isArray(f['vlan-table']) &&
    Array.isArray(f['multicast-table']) && f['multicast-table'].every((m) => typeof m === 'string' && MAC_RE.test(m) && (parseInt(m.slice(0, 2), 16) & 1) === 1);
  if (!ok) throw new QmpProtocolError('ERR_QMP_PROTOCOL', path, `query-rx-filter returned no well-formed receive filter for NIC ${nic}`, 'query-rx-filter');
  return f as unknown as GuestRxFilter;
}

/** Why a {@link RxFilterFollower} stopped: {@link RxFilterFollower.stop} was called, the QMP connection ended, or QEMU deleted the NIC. */
export type RxFilterStopReason = 'stop' | 'close' | 'deleted';

/**
 * A running {@link followRxFilter}. Emits `'sync'` with each {@link RxFilterState} applied, `'error'` when a sync
 * failed (the follower goes on with the next change; without an `'error'` listener the failure is a process
 * warning), and `'stop'` with a {@link RxFilterStopReason} once it has stopped: by {@link stop} (`'stop'`), because the
 * QMP connection ended (`'close'`), or because QEMU deleted the NIC (`'deleted'`: its `DEVICE_DELETED`, e.g. after
 * `detachMacvtap`; a sync that was running then and fails because the NIC is gone is no `'error'`).
 */
export class RxFilterFollower extends EventEmitter {
  /** QEMU's name of the followed NIC. */
  readonly nic: string;
  /** The backend's netdev id. */
  readonly netdevId: string;
  #qmp: QmpClient;
  #apply: () => Promise<RxFilterState>;
  #state: RxFilterState | null = null;
  #running: Promise<void> | null = null;
  #dirty = false;
  #stopped = false;
  #reason: RxFilterStopReason | null = null;
  #onEvent = (ev: { data: Record<string, unknown> }): void => {
    if (ev.data.name === this.nic) this.#schedule();
  };
  #onClose = (): void => {
    void this.#halt('close');
  };
  #onDeleted = (ev: { data: Record<string, unknown> }): void => {
    if (ev.data.device === this.nic) void this.#halt('deleted');
  };

  /** @internal Made by {@link followRxFilter}. */
  constructor(qmp: QmpClient, nic: string, netdevId: string, apply: () => Promise<RxFilterState>) {
    super();
    this.#qmp = qmp;
    this.nic = nic;
    this.netdevId = netdevId;
    this.#apply = apply;
  }

  /** The state last applied, `null` before the first sync. */
  get state(): RxFilterState | null {
    return this.#state;
  }

  /** `true` once stopped. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Why it stopped, `null` while it runs. */
  get stopReason(): RxFilterStopReason | null {
    return this.#reason;
  }

  /** @internal Subscribes and runs the first sync; rejects (subscribed to nothing) when that sync fails. */
  async start(): Promise<void> {
    this.#qmp.on('NIC_RX_FILTER_CHANGED', this.#onEvent);
    this.#qmp.once('close', this.#onClose);
    this.#qmp.on('DEVICE_DELETED', this.#onDeleted);
    // The first query also re-arms QEMU's notification, which it sends once until the filter is queried. An event
    // during it finds #running set and is run after it (#dirty), never beside it.
    const first = this.#apply();
    this.#running = first.then(() => undefined, () => undefined);
    try {
      this.#state = await first;
    } catch (e) {
      this.#unsubscribe();
      this.#stopped = true;
      this.#running = null;
      throw e;
    }
    this.#running = null;
    if (this.#dirty) this.#schedule();
  }

  /**
   * Stops following: no more queries or changes. What was applied stays on the macvtap (as libvirt leaves it); it goes
   * with the link. Resolves once a sync in progress has finished. Idempotent.
   */
  stop(): Promise<void> {
    return this.#halt('stop');
  }

  async #halt(reason: RxFilterStopReason): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#reason = reason;
      this.#unsubscribe();
      await this.#running;
      this.emit('stop', reason);
    }
    await this.#running;
  }

  /** `await using f = await followRxFilter(…)`: stops at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  #unsubscribe(): void {
    this.#qmp.off('NIC_RX_FILTER_CHANGED', this.#onEvent);
    this.#qmp.off('close', this.#onClose);
    this.#qmp.off('DEVICE_DELETED', this.#onDeleted);
  }

  // One sync at a time; a change announced during a sync runs another one after it (the query reads the latest).
  #schedule(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#dirty = true;
      return;
    }
    this.#running = (async () => {
      do {
        this.#dirty = false;
        try {
          this.#state = await this.#apply();
          this.emit('sync', this.#state);
        } catch (e) {
          // The NIC went away under this sync (QEMU's DEVICE_DELETED came before the query's error): nothing to follow.
          if (this.#reason === 'deleted') break;
          if (this.listenerCount('error') > 0) this.emit('error', e);
          else process.emitWarning(`macvtap: following the receive filter of NIC ${this.nic} failed: ${String(e)}`, 'MacvtapWarning');
        }
      } while (this.#dirty && !this.#stopped);
      this.#running = null;
    })();
  }
}

/**
 * Follows the guest's receive filter onto the macvtap behind netdev `netdevId`: now, and on every
 * `NIC_RX_FILTER_CHANGED` QEMU sends for that NIC, it runs `query-rx-filter` and applies it to the macvtap:
 * - the guest's MAC (`main-mac`) becomes the macvtap's (`ip link set LINK address MAC`);
 * - `promisc` when the guest is promiscuous or has VLANs in its filter, `allmulticast` when it wants all multicast or
 *   its multicast table overflowed (`ip link set LINK promisc|allmulticast on|off`);
 * - the guest's multicast table becomes the macvtap's static multicast list (`ip maddr add|del ADDR dev LINK`; empty
 *   when the guest wants no multicast). Static entries the guest does not want are deleted, whoever added them;
 *   entries the host's own IP stack or sockets hold are left alone.
 * The guest's unicast table is not applied: a macvtap in any mode but `passthru` receives only its own MAC.
 * The NIC must be a device with an id (`-device virtio-net-pci,netdev=ID,id=NIC`, `device_add` with `id`): it is found
 * through QOM (`qom-list /machine/peripheral`, `qom-get … netdev`).
 *
 * Equivalent to libvirt's handling of `NIC_RX_FILTER_CHANGED` for `<interface type='direct'
 * trustGuestRxFilters='yes'>` (it syncs MAC, promiscuity, multicast mode and list the same way).
 *
 * @example
 * ```ts
 * const qmp = await connectQmp('/run/vm1/qmp.sock');
 * const follower = await followRxFilter(qmp, 'mvtap0', { netdevId: 'n0', netns });
 * follower.on('sync', (s) => console.log(s.mac, s.multicast));
 * // … when the guest is gone (it stops by itself when the NIC is deleted or the QMP connection ends):
 * await follower.stop();
 * ```
 * @throws `TypeError` (`ERR_INVALID_ARG_VALUE`) when no NIC with an id uses `netdevId`; {@link MacvtapError} when the
 *   link is missing (`ENODEV`) or not a macvtap/macvlan (`EINVAL`) or the kernel refuses a change; {@link QmpError}
 *   / `QmpProtocolError` when QEMU refuses a query or the connection fails.
 */
export async function followRxFilter(qmp: QmpClient, link: LinkRef, options: FollowRxFilterOptions): Promise<RxFilterFollower> {
  qmpClient(qmp);
  const key = v.linkRef('link', link);
  const opts = v.options('options', options);
  v.knownKeys('options', opts, ['netdevId', 'netns']);
  if (typeof opts.netdevId !== 'string' || !/^[A-Za-z][A-Za-z0-9_.-]{0,127}$/.test(opts.netdevId)) {
    throw invalidType('netdevId', 'a QEMU id (a letter, then letters, digits, "-", "_", ".")', opts.netdevId);
  }
  const netdevId = opts.netdevId;
  const ns = v.nsOf(opts);
  const netns = ns === null ? {} : { netns: ns };
  const linkArg: LinkRef = key.name ?? key.index!;

  const info = await getLink(linkArg, netns);
  if (info.kind !== 'macvtap' && info.kind !== 'macvlan') {
    throw new MacvtapError({ code: 'EINVAL', errno: -22, syscall: 'followRxFilter', device: info.name },
      `EINVAL: ${info.name} is not a macvtap or macvlan (kind ${info.kind ?? 'none'}): only those have the filter this follows`);
  }
  const nic = await findNic(qmp, netdevId);

  const apply = async (): Promise<RxFilterState> => {
    const guest = parseGuestFilter(qmp.path, nic, await qmp.execute('query-rx-filter', { name: nic }));
    const mac = v.mac('main-mac', guest['main-mac']);
    const promisc = guest.promiscuous || guest['vlan-table'].length > 0;
    const allmulti = guest.multicast === 'all' || (guest.multicast === 'normal' && guest['multicast-overflow']);
    const wanted = guest.multicast === 'none' ? [] : guest['multicast-table'];
    const now = await getLink(linkArg, netns);
    const changed: RxFilterState['changed'] = [];
    const change: { mac?: string; promisc?: boolean; allmulti?: boolean } = {};
    if (now.mac?.toLowerCase() !== mac.toLowerCase()) {
      change.mac = mac;
      changed.push('mac');
    }
    if (now.promisc !== promisc) {
      change.promisc = promisc;
      changed.push('promisc');
    }
    if (((now.flags & IFF_ALLMULTI) !== 0) !== allmulti) {
      change.allmulti = allmulti;
      changed.push('allmulti');
    }
    if (changed.length > 0) await setLink(linkArg, change, netns);
    const mc = await callNative(() => binding.linkMulticastSync(key, wanted.map((m) => m.toLowerCase()), ns));
    if (mc.added.length > 0 || mc.removed.length > 0) changed.push('multicast');
    return { nic, mac: mac.toLowerCase(), promisc, allmulti, multicast: mc.entries.filter((e) => e.static).map((e) => e.address), changed };
  };

  const follower = new RxFilterFollower(qmp, nic, netdevId, apply);
  await follower.start();
  return follower;
}

/** The id of the NIC device whose `netdev` property is `netdevId` (QOM: devices with an id live in /machine/peripheral). */
async function findNic(qmp: QmpClient, netdevId: string): Promise<string> {
  for (const id of await peripheralIds(qmp)) {
    let netdev: unknown;
    try {
      netdev = await qmp.execute('qom-get', { path: `/machine/peripheral/${id}`, property: 'netdev' });
    } catch (e) {
      // A device without a netdev property (a disk, a serial port): not a NIC.
      if (e instanceof QmpError) continue;
      throw e;
    }
    if (netdev === netdevId) return id;
  }
  throw invalidValue('netdevId', `names no NIC with a device id in this QEMU (no -device …,netdev=${netdevId},id=… under /machine/peripheral)`, netdevId);
}
